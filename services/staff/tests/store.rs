//! The staff store on both backends, a real SQLite file and a fresh PostgreSQL database, with
//! the same results and the same errors: create, get, list (name word prefixes, an exact
//! username), accounts, changes checked against `If-Match`, a taken username (409), and an
//! `Idempotency-Key` claimed by two concurrent creates (one commits, the other rolls back).
//! Every test runs on both (`sqlite` and `postgres` in a module named after it).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use kit::RequestContext;
use kit::database::Database;
use kit::events::now;
use kit::idempotency::{IdempotencyClaim, KEY_TAKEN, KeyStore, Lookup, reply_bytes};
use serde_json::json;
use shared_events::staff::{Staff, StaffRole};
use shared_events::{Aggregate, ErrorCode, ListQuery, ServiceError, subjects};
use staff_service::domain::{self, StaffDetails};
use staff_service::store::{Committed, HashUpdate, StaffStore};
use uuid::Uuid;

mod common;
use common::{Backend, TestDatabase, on_both_backends};

on_both_backends!(
    a_created_staff_member_is_found_by_id_by_name_and_by_username,
    a_login_is_an_account_until_it_is_removed,
    a_change_checks_the_version_and_reindexes_the_name,
    a_username_belongs_to_one_active_staff_member,
    two_creates_with_one_idempotency_key_commit_once,
);

/// A PHC string: the store keeps it as it is.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn details(name: &str, role: &str) -> StaffDetails {
    StaffDetails::parse(json!({"name": name, "role": role}).as_object().unwrap()).unwrap()
}

/// A new staff member; with a username, a login with [`HASH`].
async fn hire(
    store: &StaffStore,
    name: &str,
    role: &str,
    username: Option<&str>,
    context: &RequestContext,
) -> Result<Committed, ServiceError> {
    let staff = domain::register(&details(name, role), username.map(str::to_owned), now());
    let hash = username.map(|_| HASH.to_owned());
    store.create(staff, hash, context).await
}

/// `domain::update` as the `update` command runs it, the login kept.
async fn rename(
    store: &StaffStore,
    id: Uuid,
    expected_version: Option<i64>,
    name: &'static str,
) -> Result<Committed, ServiceError> {
    store
        .change(id, "updated", &RequestContext::system(), move |current| {
            let decided = domain::update(
                current,
                expected_version,
                &details(name, current.role.as_str()),
                now(),
            )?;
            Ok(decided.map(|(staff, _keep)| (staff, HashUpdate::Keep)))
        })
        .await
}

/// A change of the login: `username` with [`HASH`], or none.
async fn set_login(
    store: &StaffStore,
    id: Uuid,
    username: Option<&'static str>,
) -> Result<Committed, ServiceError> {
    store
        .change(id, "updated", &RequestContext::system(), move |current| {
            let next = Staff {
                username: username.map(str::to_owned),
                version: current.version + 1,
                updated_at: now(),
                ..current.clone()
            };
            let hash = match username {
                Some(_) => HashUpdate::Set(HASH.to_owned()),
                None => HashUpdate::Clear,
            };
            Ok(Some((next, hash)))
        })
        .await
}

async fn search(store: &StaffStore, q: &str) -> Vec<String> {
    let query = ListQuery {
        q: Some(q.to_owned()),
        ..ListQuery::default()
    };
    let page = store.list(&query).await.unwrap();
    page.items.into_iter().map(|s| s.name).collect()
}

async fn count(database: &Database, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    match database {
        Database::Sqlite { pool, .. } => sqlx::query_scalar(sql).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap()
}

async fn a_created_staff_member_is_found_by_id_by_name_and_by_username(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let store = StaffStore::new(&db.database);
    let context = RequestContext::system();
    let house = hire(&store, "Gregory House", "doctor", Some("house"), &context)
        .await
        .unwrap();
    hire(&store, "James Wilson", "doctor", None, &context)
        .await
        .unwrap();
    hire(&store, "Greta Cuddy", "admin", Some("cuddy"), &context)
        .await
        .unwrap();

    let event = house.event.expect("a create has an event");
    assert_eq!(
        event.subject,
        subjects::event(Aggregate::Staff, house.staff.id, "created")
    );
    let found = store.get(house.staff.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&house.staff), "read back exactly");
    assert_eq!(store.get(Uuid::now_v7()).await.unwrap(), None);

    assert_eq!(
        search(&store, "gre").await,
        ["Gregory House", "Greta Cuddy"]
    );
    assert_eq!(search(&store, "GREG hou").await, ["Gregory House"]);
    assert_eq!(search(&store, "cuddy").await, ["Greta Cuddy"], "username");
    assert_eq!(search(&store, "wil").await, ["James Wilson"]);
    // A NUL is no part of a word nor of any username (PostgreSQL text cannot hold one).
    assert_eq!(search(&store, "house\0").await, ["Gregory House"]);
    assert_eq!(count(&db.database, "outbox").await, 3);
    db.close().await;
}

async fn a_login_is_an_account_until_it_is_removed(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let store = StaffStore::new(&db.database);
    let context = RequestContext::system();
    assert!(!store.has_admin_login().await.unwrap());
    let nurse = hire(&store, "Carla Espinosa", "nurse", Some("carla"), &context)
        .await
        .unwrap();
    hire(&store, "Bob Kelso", "admin", None, &context)
        .await
        .unwrap();
    assert!(!store.has_admin_login().await.unwrap(), "no login");
    let admin = hire(&store, "Perry Cox", "admin", Some("cox"), &context)
        .await
        .unwrap();
    assert!(store.has_admin_login().await.unwrap());

    let account = store.account("carla").await.unwrap().expect("an account");
    assert_eq!(account.staff_id, nurse.staff.id);
    assert_eq!(account.name, "Carla Espinosa");
    assert_eq!(account.role, StaffRole::Nurse);
    assert_eq!(account.password_hash, HASH);
    assert!(store.account("nobody").await.unwrap().is_none());
    // A login typed with a NUL (which PostgreSQL text cannot hold) has no account: no 500.
    assert!(store.account("carla\0").await.unwrap().is_none());

    let removed = set_login(&store, nurse.staff.id, None).await.unwrap();
    assert_eq!(removed.staff.username, None);
    assert!(store.account("carla").await.unwrap().is_none());

    let deleted = store
        .change(admin.staff.id, "deleted", &context, |current| {
            let (staff, _keep) = domain::delete(current, Some(current.version), now())?;
            Ok(Some((staff, HashUpdate::Keep)))
        })
        .await
        .unwrap();
    assert!(deleted.staff.deleted_at.is_some());
    assert!(store.account("cox").await.unwrap().is_none());
    assert!(
        !store.has_admin_login().await.unwrap(),
        "the admin is deleted"
    );
    assert_eq!(store.get(admin.staff.id).await.unwrap(), None);
    db.close().await;
}

async fn a_change_checks_the_version_and_reindexes_the_name(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let store = StaffStore::new(&db.database);
    let created = hire(
        &store,
        "Gregory House",
        "doctor",
        None,
        &RequestContext::system(),
    )
    .await
    .unwrap();
    let id = created.staff.id;

    let stale = rename(&store, id, Some(2), "Lisa Cuddy").await.unwrap_err();
    assert_eq!(stale.code, ErrorCode::PreconditionFailed);
    assert_eq!(count(&db.database, "outbox").await, 1, "nothing written");

    let renamed = rename(&store, id, Some(1), "Lisa Cuddy").await.unwrap();
    assert_eq!(renamed.staff.version, 2);
    assert_eq!(
        renamed.event.expect("a change has an event").subject,
        subjects::event(Aggregate::Staff, id, "updated")
    );
    assert_eq!(store.get(id).await.unwrap(), Some(renamed.staff));
    assert!(search(&store, "house").await.is_empty());
    assert_eq!(search(&store, "lisa").await, ["Lisa Cuddy"]);

    // The same details again: no change, no event, the version stays.
    let unchanged = rename(&store, id, Some(2), "Lisa Cuddy").await.unwrap();
    assert!(unchanged.event.is_none());
    assert_eq!(unchanged.staff.version, 2);

    let missing = rename(&store, Uuid::now_v7(), None, "Nobody")
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
    assert_eq!(count(&db.database, "outbox").await, 2);
    db.close().await;
}

async fn a_username_belongs_to_one_active_staff_member(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let store = StaffStore::new(&db.database);
    let context = RequestContext::system();
    let house = hire(&store, "Gregory House", "doctor", Some("house"), &context)
        .await
        .unwrap();

    let taken = hire(&store, "Another House", "nurse", Some("house"), &context)
        .await
        .unwrap_err();
    assert_eq!(taken.code, ErrorCode::Conflict);
    assert_eq!(taken.message, r#"the username "house" is already taken"#);
    let wilson = hire(&store, "James Wilson", "doctor", Some("wilson"), &context)
        .await
        .unwrap();
    let taken = set_login(&store, wilson.staff.id, Some("house"))
        .await
        .unwrap_err();
    assert_eq!(taken.code, ErrorCode::Conflict);
    assert_eq!(taken.message, r#"the username "house" is already taken"#);
    assert_eq!(count(&db.database, "staff").await, 2, "nothing written");
    assert_eq!(count(&db.database, "outbox").await, 2);

    // Once its owner is deleted, the username is free again.
    store
        .change(house.staff.id, "deleted", &context, |current| {
            let (staff, _keep) = domain::delete(current, None, now())?;
            Ok(Some((staff, HashUpdate::Keep)))
        })
        .await
        .unwrap();
    let again = set_login(&store, wilson.staff.id, Some("house"))
        .await
        .unwrap();
    assert_eq!(again.staff.username.as_deref(), Some("house"));
    let account = store.account("house").await.unwrap().expect("an account");
    assert_eq!(account.staff_id, wilson.staff.id);
    db.close().await;
}

async fn two_creates_with_one_idempotency_key_commit_once(backend: Backend) {
    let logs = captured_logs();
    let db = TestDatabase::fresh(backend).await;
    let store = StaffStore::new(&db.database);
    let key = format!("retry-{}", Uuid::new_v4());
    let mut context = RequestContext::system();
    context.idempotency = Some(IdempotencyClaim::new(
        &context.actor.id,
        &key,
        "create",
        br#"{"name":"Gregory House","role":"doctor"}"#,
    ));
    // Two different rows, so that only the key can refuse one of them.
    let (first, second) = tokio::join!(
        hire(&store, "Gregory House", "doctor", None, &context),
        hire(&store, "Gregory House", "doctor", None, &context),
    );
    let (committed, refused) = match (first, second) {
        (Ok(committed), Err(refused)) | (Err(refused), Ok(committed)) => (committed, refused),
        (first, second) => panic!("not one commit and one refusal: {first:?}, {second:?}"),
    };
    assert_eq!(refused.code, ErrorCode::Internal);
    let taken = format!("{KEY_TAKEN}: {key:?}");
    assert!(logs.text().contains(&taken), "no {taken:?} logged");

    assert_eq!(count(&db.database, "staff").await, 1);
    assert_eq!(count(&db.database, "outbox").await, 1);
    assert_eq!(count(&db.database, "staff_name_words").await, 2);
    let claim = context.idempotency.as_ref().unwrap();
    let stored = KeyStore::new(db.database.clone())
        .lookup(claim)
        .await
        .unwrap();
    let reply = reply_bytes(&committed.staff).unwrap();
    assert_eq!(stored, Lookup::Replay(reply.into()));
    db.close().await;
}

/// Everything logged by this test binary from now on (the refusal of a lost key race is only
/// logged: the client sees a 500 that the command runner turns into the winner's reply).
fn captured_logs() -> Arc<Logs> {
    static LOGS: OnceLock<Arc<Logs>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Logs::default());
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        logs
    })
    .clone()
}

#[derive(Default)]
struct Logs(Mutex<Vec<u8>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct LogWriter(Arc<Logs>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.0.lock().unwrap().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
