//! The staff service's PostgreSQL schema (migrations/staff/postgres) on a real server: it
//! applies, applies again as a no-op, and refuses what the SQLite schema refuses: a username
//! without a password hash (or the reverse), one username for two active staff members, an
//! unknown role. The store on it is tested in `store.rs` and `login_limits.rs`.

use kit::postgres_test::{
    FreshDatabase, refused,
    sqlstate::{CHECK_VIOLATION, UNIQUE_VIOLATION},
};
use sqlx::PgPool;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/staff/postgres");

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

async fn hire(
    pool: &PgPool,
    id: Uuid,
    role: &str,
    username: Option<&str>,
    password_hash: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO staff (id, name, role, username, password_hash, version, created_at, updated_at)
         VALUES ($1::uuid, 'Gregory House', $2, $3, $4, 1, now(), now())",
    )
    .bind(id.to_string())
    .bind(role)
    .bind(username)
    .bind(password_hash)
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
            "login_failures",
            "outbox",
            "staff",
            "staff_name_words"
        ]
    );
    database.drop().await;
}

#[tokio::test]
async fn a_username_always_has_a_password_hash_and_a_hash_a_username() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    hire(pool, Uuid::now_v7(), "doctor", Some("house"), Some(HASH))
        .await
        .unwrap();
    hire(pool, Uuid::now_v7(), "nurse", None, None)
        .await
        .unwrap();
    for (username, hash) in [(Some("wilson"), None), (None, Some(HASH))] {
        let (code, constraint) =
            refused(hire(pool, Uuid::now_v7(), "doctor", username, hash).await);
        assert_eq!(code, CHECK_VIOLATION, "{username:?}");
        assert_eq!(
            constraint.as_deref(),
            Some("staff_username_has_password_hash")
        );
    }
    database.drop().await;
}

#[tokio::test]
async fn a_username_belongs_to_one_active_staff_member_and_is_free_again_after_a_delete() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let first = Uuid::now_v7();
    hire(pool, first, "doctor", Some("house"), Some(HASH))
        .await
        .unwrap();
    let (code, constraint) =
        refused(hire(pool, Uuid::now_v7(), "admin", Some("house"), Some(HASH)).await);
    assert_eq!(code, UNIQUE_VIOLATION);
    assert_eq!(constraint.as_deref(), Some("staff_username_active"));

    sqlx::query("UPDATE staff SET deleted_at = now(), version = 2 WHERE id = $1::uuid")
        .bind(first.to_string())
        .execute(pool)
        .await
        .unwrap();
    hire(pool, Uuid::now_v7(), "admin", Some("house"), Some(HASH))
        .await
        .unwrap();
    database.drop().await;
}

#[tokio::test]
async fn an_unknown_role_is_refused() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let (code, _) = refused(hire(database.pool(), Uuid::now_v7(), "surgeon", None, None).await);
    assert_eq!(code, CHECK_VIOLATION);
    database.drop().await;
}

#[tokio::test]
async fn search_words_belong_to_a_staff_member() {
    let database = FreshDatabase::migrated(&MIGRATOR).await;
    let pool = database.pool();
    let member = Uuid::now_v7();
    hire(pool, member, "doctor", None, None).await.unwrap();
    let index = |word: &'static str, owner: Uuid| {
        sqlx::query("INSERT INTO staff_name_words (word, staff_id) VALUES ($1, $2::uuid)")
            .bind(word)
            .bind(owner.to_string())
            .execute(pool)
    };
    index("gregory", member).await.unwrap();
    index("house", member).await.unwrap();
    let (code, _) = refused(index("house", member).await.map(|_| ()));
    assert_eq!(code, UNIQUE_VIOLATION);
    let (code, _) = refused(index("ghost", Uuid::now_v7()).await.map(|_| ()));
    assert_eq!(code, "23503"); // foreign_key_violation
    let collation: String = sqlx::query_scalar(
        "SELECT collation_name::text FROM information_schema.columns
         WHERE table_name = 'staff_name_words' AND column_name = 'word'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(collation, "C");
    database.drop().await;
}
