//! The patient service's PostgreSQL schema (migrations/patient/postgres) on a real server: it
//! applies, applies again as a no-op, and refuses what the SQLite schema refuses (a second
//! patient with one MRN, search words of no patient), plus what it only says in comments. The
//! outbox and idempotency-key tables, the same in every service, are checked here.
//! The PostgreSQL store is not written yet (issue #9).

use kit::postgres_test::{
    FreshDatabase, refused,
    sqlstate::{CHECK_VIOLATION, FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION},
};
use sqlx::PgPool;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/patient/postgres");

async fn register(pool: &PgPool, id: Uuid, mrn: &str, sex: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patients (id, mrn, name, birth_date, sex, version, created_at, updated_at)
         VALUES ($1::uuid, $2, 'Ada Lovelace', '1985-12-10', $3, 1, now(), now())",
    )
    .bind(id.to_string())
    .bind(mrn)
    .bind(sex)
    .execute(pool)
    .await
    .map(|_| ())
}

async fn index_word(pool: &PgPool, word: &str, patient: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO patient_name_words (word, patient_id) VALUES ($1, $2::uuid)")
        .bind(word)
        .bind(patient.to_string())
        .execute(pool)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn the_migrations_apply_to_a_fresh_database_and_applying_again_changes_nothing() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let tables = database.tables().await;
    assert_eq!(
        tables,
        [
            "idempotency_keys",
            "outbox",
            "patient_name_words",
            "patients"
        ]
    );
    database.drop().await;
}

#[tokio::test]
async fn a_second_patient_with_the_same_mrn_is_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    register(pool, Uuid::now_v7(), "4268313253", "female")
        .await
        .unwrap();
    let (code, constraint) = refused(register(pool, Uuid::now_v7(), "4268313253", "male").await);
    assert_eq!(code, UNIQUE_VIOLATION);
    assert_eq!(constraint.as_deref(), Some("patients_mrn_key"));
    register(pool, Uuid::now_v7(), "8815022549", "male")
        .await
        .unwrap();
    database.drop().await;
}

#[tokio::test]
async fn an_mrn_that_is_not_ten_digits_and_an_unknown_sex_are_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    for mrn in ["426831325", "42683132531", "426831325x", ""] {
        let (code, _) = refused(register(pool, Uuid::now_v7(), mrn, "female").await);
        assert_eq!(code, CHECK_VIOLATION, "{mrn:?}");
    }
    let (code, _) = refused(register(pool, Uuid::now_v7(), "4268313253", "f").await);
    assert_eq!(code, CHECK_VIOLATION);
    database.drop().await;
}

#[tokio::test]
async fn search_words_belong_to_a_patient_and_a_prefix_range_finds_them_in_code_point_order() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let (ada, adele) = (Uuid::now_v7(), Uuid::now_v7());
    register(pool, ada, "4268313253", "female").await.unwrap();
    register(pool, adele, "8815022549", "female").await.unwrap();
    for (word, patient) in [
        ("ada", ada),
        ("lovelace", ada),
        ("adèle", adele),
        ("adz", adele),
    ] {
        index_word(pool, word, patient).await.unwrap();
    }

    let (code, _) = refused(index_word(pool, "ghost", Uuid::now_v7()).await);
    assert_eq!(code, FOREIGN_KEY_VIOLATION);
    let (code, _) = refused(index_word(pool, "ada", ada).await);
    assert_eq!(code, UNIQUE_VIOLATION);

    // kit::listing's prefix range, `word >= p AND word < p || U+10FFFF`, in code point order
    // (a language collation would put "adèle" before "adz").
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT word FROM patient_name_words WHERE word >= $1 AND word < $2 ORDER BY word",
    )
    .bind("ad")
    .bind("ad\u{10FFFF}")
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(found, ["ada", "adz", "adèle"]);
    // Whatever the server's default collation: the column has its own.
    let collation: String = sqlx::query_scalar(
        "SELECT collation_name::text FROM information_schema.columns
         WHERE table_name = 'patient_name_words' AND column_name = 'word'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(collation, "C");
    database.drop().await;
}

#[tokio::test]
async fn an_outbox_event_is_stored_once_and_the_sequence_follows_the_inserts() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let append = |event_id: Uuid| {
        sqlx::query(
            "INSERT INTO outbox (event_id, subject, payload, created_at)
             VALUES ($1::uuid, 'hospital.events.patient.x.created', '{\"b\":1,\"a\":2}', now())",
        )
        .bind(event_id.to_string())
        .execute(pool)
    };
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    append(first).await.unwrap();
    append(second).await.unwrap();
    let (code, constraint) = refused(append(first).await.map(|_| ()));
    assert_eq!(code, UNIQUE_VIOLATION);
    assert_eq!(constraint.as_deref(), Some("outbox_event_id_key"));

    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT seq, event_id::text, payload FROM outbox ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].0 < rows[1].0);
    assert_eq!(rows[0].1, first.to_string());
    assert_eq!(rows[1].1, second.to_string());
    // Published byte for byte as serialised: key order kept.
    assert_eq!(rows[0].2, r#"{"b":1,"a":2}"#);

    // The sequence is the database's to give.
    let given = sqlx::query(
        "INSERT INTO outbox (seq, event_id, subject, payload, created_at)
         VALUES (99, $1::uuid, 's', '{}', now())",
    )
    .bind(Uuid::now_v7().to_string())
    .execute(pool)
    .await
    .map(|_| ());
    assert_eq!(refused(given).0, "428C9"); // generated_always
    database.drop().await;
}

#[tokio::test]
async fn an_idempotency_key_is_one_users_once_and_its_reply_is_kept_byte_for_byte() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let fingerprint = "0f".repeat(32);
    let remember = |actor: &'static str, action: &'static str, fingerprint: String| {
        sqlx::query(
            "INSERT INTO idempotency_keys (actor_id, key, action, fingerprint, reply, created_at)
             VALUES ($1, 'k-1', $2, $3, '{\"id\": \"x\",\"version\":1}', now())",
        )
        .bind(actor)
        .bind(action)
        .bind(fingerprint)
        .execute(pool)
    };
    remember("user-1", "create", fingerprint.clone())
        .await
        .unwrap();
    // Another user's key of the same name is theirs alone.
    remember("user-2", "create", fingerprint.clone())
        .await
        .unwrap();
    let (code, _) = refused(
        remember("user-1", "create", fingerprint.clone())
            .await
            .map(|_| ()),
    );
    assert_eq!(code, UNIQUE_VIOLATION);
    let (code, _) = refused(
        remember("user-3", "list", fingerprint.clone())
            .await
            .map(|_| ()),
    );
    assert_eq!(code, CHECK_VIOLATION);
    let (code, _) = refused(
        remember("user-3", "create", "not hex".into())
            .await
            .map(|_| ()),
    );
    assert_eq!(code, CHECK_VIOLATION);

    let reply: String = sqlx::query_scalar(
        "SELECT reply FROM idempotency_keys WHERE actor_id = 'user-1' AND key = 'k-1'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(reply, r#"{"id": "x","version":1}"#);
    database.drop().await;
}
