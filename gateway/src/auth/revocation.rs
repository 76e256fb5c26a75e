//! Tokens that stop working before they expire: on `POST /auth/logout` (the token's `jti`
//! goes into the JetStream key-value bucket `hospital_revoked_tokens`, which every gateway
//! instance watches), and when a staff member's account changes under them (the staff events:
//! deleted, login removed, role changed, password changed). Both are followed from NATS, so a
//! revocation takes effect on every gateway at once, without a restart.
//!
//! Until both sources are read up to date the gateway cannot tell a revoked token from a good
//! one, so it answers 503 rather than let a revoked token through.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv};
use futures::StreamExt;
use shared_events::Aggregate;
use shared_events::EventEnvelope;
use shared_events::staff::{Staff, StaffRole};
use shared_events::subjects::{EVENT_STREAM, REVOKED_TOKENS_BUCKET, events_of};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::jwt::Claims;

/// The staff event that says a password changed; earlier tokens of the account are revoked.
pub const PASSWORD_CHANGED: &str = "password_changed";
/// How long a logout is remembered: longer than any token can live
/// ([`crate::config::MAX_TTL_MINUTES`]), whatever each gateway's own lifetime setting.
pub const KEEP_REVOKED: Duration =
    Duration::from_secs(crate::config::MAX_TTL_MINUTES * 60 + 5 * 60);
/// The description of each gateway's consumer of staff events, so operators (and tests) can
/// tell it from the live feeds' consumers.
pub const STAFF_CONSUMER_DESCRIPTION: &str = "gateway: staff events that revoke tokens";
/// Pause before following NATS again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// Why a well-signed, unexpired token is refused anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Revoked {
    #[error("the access token was revoked by logging out")]
    LoggedOut,
    #[error("the account can no longer log in")]
    AccountClosed,
    #[error("the account's role has changed; log in again")]
    RoleChanged,
    #[error("the account's password has changed; log in again")]
    PasswordChanged,
    #[error("the gateway is still loading revoked tokens; try again shortly")]
    NotLoaded,
}

/// What the staff events say about an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Standing {
    role: StaffRole,
    /// Not deleted, and has a login.
    active: bool,
    /// Tokens issued before this (milliseconds since the epoch) are revoked.
    not_before_ms: i64,
    version: i64,
}

/// When a token was issued, to the millisecond: `iat` counts whole seconds, which cannot tell
/// a token issued just before a password change from the fresh one issued just after it in the
/// same second; the `jti` is a UUID v7, whose first 48 bits are the issue time in milliseconds.
fn issued_at_ms(claims: &Claims) -> i64 {
    claims
        .jti
        .get_timestamp()
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            i64::try_from(secs).unwrap_or(i64::MAX) * 1000 + i64::from(nanos / 1_000_000)
        })
        .unwrap_or(claims.iat.saturating_mul(1000))
}

pub struct Revocations {
    /// Revoked token ids, when each would have expired anyway, and why.
    tokens: RwLock<HashMap<Uuid, (i64, Revoked)>>,
    staff: RwLock<HashMap<Uuid, Standing>>,
    tokens_loaded: AtomicBool,
    staff_loaded: AtomicBool,
    bucket: OnceCell<kv::Store>,
    /// How many NATS servers keep the bucket when this gateway creates it
    /// (`HOSPITAL_STREAM_REPLICAS`).
    replicas: usize,
}

/// The revoked-tokens bucket's configuration, kept by `replicas` servers like `HOSPITAL_EVENTS`:
/// a logout must not be forgotten when a node is lost.
pub fn bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: REVOKED_TOKENS_BUCKET.to_owned(),
        description: "Access tokens revoked by logging out".to_owned(),
        history: 1,
        // No token lives longer than this, so neither need its revocation.
        max_age: KEEP_REVOKED,
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// Nothing loaded yet; the bucket, when this gateway creates it, is kept by `replicas`
    /// servers.
    pub fn new(replicas: usize) -> Self {
        Revocations {
            tokens: RwLock::default(),
            staff: RwLock::default(),
            tokens_loaded: AtomicBool::new(false),
            staff_loaded: AtomicBool::new(false),
            bucket: OnceCell::new(),
            replicas,
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.tokens_loaded.load(Ordering::Acquire) && self.staff_loaded.load(Ordering::Acquire)
    }

    /// Whether a verified token has been revoked since it was issued.
    pub fn check(&self, claims: &Claims) -> Result<(), Revoked> {
        if !self.is_loaded() {
            return Err(Revoked::NotLoaded);
        }
        if let Some((_, why)) = self.tokens.read().expect("lock").get(&claims.jti) {
            return Err(*why);
        }
        let staff = self.staff.read().expect("lock");
        let Some(standing) = staff.get(&claims.sub) else {
            return Ok(());
        };
        if !standing.active {
            Err(Revoked::AccountClosed)
        } else if standing.role != claims.role {
            Err(Revoked::RoleChanged)
        } else if issued_at_ms(claims) < standing.not_before_ms {
            Err(Revoked::PasswordChanged)
        } else {
            Ok(())
        }
    }

    /// Revokes one token here at once (for a logout the bucket tells the other gateways).
    pub fn revoke_locally(&self, jti: Uuid, expires_at: i64, why: Revoked) {
        let mut tokens = self.tokens.write().expect("lock");
        let now = chrono::Utc::now().timestamp();
        // Expired tokens are refused anyway: forget them so the map stays small.
        tokens.retain(|_, (exp, _)| *exp >= now);
        tokens.insert(jti, (expires_at, why));
    }

    /// Records a logout in the shared bucket (and here).
    pub async fn revoke(
        &self,
        js: &jetstream::Context,
        claims: &Claims,
    ) -> Result<(), async_nats::Error> {
        self.revoke_locally(claims.jti, claims.exp, Revoked::LoggedOut);
        let bucket = self.bucket(js).await?;
        bucket
            .put(claims.jti.to_string(), claims.exp.to_string().into())
            .await?;
        Ok(())
    }

    async fn bucket(&self, js: &jetstream::Context) -> Result<&kv::Store, async_nats::Error> {
        self.bucket
            .get_or_try_init(|| async {
                let created = match js.create_key_value(bucket_config(self.replicas)).await {
                    Ok(store) => return Ok(store),
                    Err(error) => error,
                };
                // JetStream refuses to create a bucket that exists with other settings (made
                // with another replica count, before the cluster was): use it as it is, or no
                // revocation would ever load and every request would be refused.
                match js.get_key_value(REVOKED_TOKENS_BUCKET).await {
                    Ok(store) => {
                        let replicas = store.stream.cached_info().config.num_replicas.max(1);
                        tracing::warn!(
                            bucket = REVOKED_TOKENS_BUCKET,
                            replicas,
                            configured = self.replicas,
                            error = %created,
                            "the revoked-tokens bucket exists with other settings; it is used as it is (see docs/scale-out.md)"
                        );
                        Ok(store)
                    }
                    Err(_) => Err(created.into()),
                }
            })
            .await
    }

    /// Applies one staff event (idempotent: older versions than the one known are ignored).
    pub fn apply(&self, event: &EventEnvelope<Staff>) {
        let mut staff = self.staff.write().expect("lock");
        let known = staff.get(&event.aggregate_id).copied();
        if known.is_some_and(|k| k.version >= event.aggregate_version) {
            return;
        }
        let active = event.data.deleted_at.is_none() && event.data.username.is_some();
        let role_changed = known.is_some_and(|k| k.role != event.data.role);
        let mut not_before_ms = known.map_or(0, |k| k.not_before_ms);
        if event.verb() == PASSWORD_CHANGED || role_changed || !active {
            not_before_ms = not_before_ms.max(event.occurred_at.timestamp_millis());
        }
        staff.insert(
            event.aggregate_id,
            Standing {
                role: event.data.role,
                active,
                not_before_ms,
                version: event.aggregate_version,
            },
        );
    }

    /// Follows the bucket and the staff events until `stop`; `lookback` is how far back
    /// staff events matter (the longest a token lives).
    pub async fn follow(
        &self,
        js: jetstream::Context,
        lookback: Duration,
        stop: CancellationToken,
    ) {
        let tokens = async {
            loop {
                if let Err(error) = self.follow_bucket(&js).await {
                    tracing::warn!(%error, "following revoked tokens; retrying");
                }
                tokio::time::sleep(RETRY).await;
            }
        };
        let staff = async {
            loop {
                if let Err(error) = self.follow_staff(&js, lookback).await {
                    tracing::warn!(%error, "following staff events for revocations; retrying");
                }
                tokio::time::sleep(RETRY).await;
            }
        };
        tokio::select! {
            () = stop.cancelled() => {}
            () = async { tokio::join!(tokens, staff); } => {}
        }
    }

    async fn follow_bucket(&self, js: &jetstream::Context) -> Result<(), async_nats::Error> {
        let bucket = self.bucket(js).await?;
        let mut watch = bucket.watch_with_history(">").await?;
        if bucket.status().await?.values() == 0 {
            self.tokens_loaded.store(true, Ordering::Release);
        }
        while let Some(entry) = watch.next().await {
            let entry = entry?;
            if entry.operation == kv::Operation::Put
                && let Ok(jti) = entry.key.parse::<Uuid>()
            {
                let expires_at = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(i64::MAX);
                self.revoke_locally(jti, expires_at, Revoked::LoggedOut);
            }
            if entry.delta == 0 {
                self.tokens_loaded.store(true, Ordering::Release);
            }
        }
        Err("the watch of revoked tokens ended".into())
    }

    async fn follow_staff(
        &self,
        js: &jetstream::Context,
        lookback: Duration,
    ) -> Result<(), async_nats::Error> {
        let stream = match js.get_stream(EVENT_STREAM).await {
            Ok(stream) => stream,
            Err(error) => {
                // No stream yet means no staff event yet: nothing is revoked.
                if !self.staff_loaded.load(Ordering::Acquire) {
                    tracing::info!(%error, "no event stream yet; no staff revocations to load");
                    self.staff_loaded.store(true, Ordering::Release);
                }
                return Err(error.into());
            }
        };
        let since = chrono::Utc::now()
            - chrono::Duration::from_std(lookback).unwrap_or(chrono::Duration::days(1));
        let deliver_policy: consumer::DeliverPolicy = serde_json::from_value(serde_json::json!({
            "deliver_policy": "by_start_time",
            "opt_start_time": since.to_rfc3339(),
        }))?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                description: Some(STAFF_CONSUMER_DESCRIPTION.to_owned()),
                filter_subject: events_of(Aggregate::Staff),
                deliver_policy,
                ..Default::default()
            })
            .await?;
        if consumer.cached_info().num_pending == 0 {
            self.staff_loaded.store(true, Ordering::Release);
        }
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            match serde_json::from_slice::<EventEnvelope<Staff>>(&message.payload) {
                Ok(event) => self.apply(&event),
                Err(error) => {
                    tracing::warn!(subject = %message.subject, %error, "an unreadable staff event");
                }
            }
            if message.info().map(|info| info.pending).unwrap_or(0) == 0 {
                self.staff_loaded.store(true, Ordering::Release);
            }
        }
        Err("the staff events ended".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use shared_events::envelope::Actor;

    fn claims(sub: Uuid, role: StaffRole, iat: i64) -> Claims {
        Claims {
            sub,
            role,
            name: "N".into(),
            iat,
            nbf: iat,
            exp: iat + 900,
            iss: String::new(),
            aud: String::new(),
            jti: Uuid::new_v4(),
        }
    }

    fn event(
        id: Uuid,
        version: i64,
        verb: &str,
        at: i64,
        change: impl FnOnce(&mut Staff),
    ) -> EventEnvelope<Staff> {
        let when = Utc.timestamp_opt(at, 0).unwrap();
        let mut staff = Staff {
            id,
            name: "N".into(),
            role: StaffRole::Nurse,
            specialization: None,
            phone: None,
            email: None,
            username: Some("n".into()),
            version,
            created_at: when,
            updated_at: when,
            deleted_at: None,
        };
        change(&mut staff);
        EventEnvelope {
            event_id: Uuid::now_v7(),
            event_type: format!("staff.{verb}"),
            aggregate: Aggregate::Staff,
            aggregate_id: id,
            aggregate_version: version,
            occurred_at: when,
            actor: Actor::system(),
            correlation_id: None,
            data: staff,
        }
    }

    fn loaded() -> Revocations {
        let revocations = Revocations::new(1);
        revocations.tokens_loaded.store(true, Ordering::Release);
        revocations.staff_loaded.store(true, Ordering::Release);
        revocations
    }

    #[test]
    fn a_token_issued_in_the_same_second_is_told_apart_by_its_jti() {
        let revocations = loaded();
        let id = Uuid::now_v7();
        let at = |ms: i64| Utc.timestamp_millis_opt(ms).unwrap();
        let token = |ms: u64| Claims {
            jti: Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                ms / 1000,
                (ms % 1000) as u32 * 1_000_000,
            )),
            ..claims(id, StaffRole::Nurse, (ms / 1000) as i64)
        };
        let mut change = event(id, 1, PASSWORD_CHANGED, 0, |_| {});
        change.occurred_at = at(1_700_000_000_500);
        revocations.apply(&change);
        assert_eq!(
            revocations.check(&token(1_700_000_000_400)),
            Err(Revoked::PasswordChanged)
        );
        assert_eq!(revocations.check(&token(1_700_000_000_600)), Ok(()));
    }

    #[test]
    fn the_bucket_is_kept_by_as_many_servers_as_configured() {
        for replicas in [1, 3] {
            let config = bucket_config(replicas);
            assert_eq!(config.num_replicas, replicas);
            assert_eq!(config.bucket, REVOKED_TOKENS_BUCKET);
            assert_eq!(config.max_age, KEEP_REVOKED);
        }
    }

    #[tokio::test]
    async fn a_bucket_that_exists_with_other_settings_is_used_as_it_is() {
        let server = kit::nats_server::TestNatsServer::start().await;
        let js = jetstream::new(server.connect_as(kit::nats_users::GATEWAY).await);
        // As an earlier gateway might have made it (another replica count needs a cluster; any
        // difference in settings is refused the same way).
        let earlier = kv::Config {
            max_age: Duration::from_secs(3600),
            ..bucket_config(1)
        };
        js.create_key_value(earlier).await.unwrap();
        assert!(
            js.create_key_value(bucket_config(1)).await.is_err(),
            "JetStream now accepts a bucket with other settings: the fallback may go"
        );

        let revocations = Revocations::new(1);
        let bucket = revocations.bucket(&js).await.unwrap();
        assert_eq!(
            bucket.stream.cached_info().config.max_age,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn nothing_is_accepted_before_the_revocations_are_loaded() {
        let revocations = Revocations::new(1);
        let token = claims(Uuid::now_v7(), StaffRole::Nurse, 100);
        assert_eq!(revocations.check(&token), Err(Revoked::NotLoaded));
    }

    #[test]
    fn a_logged_out_token_is_refused_and_others_are_not() {
        let revocations = loaded();
        let sub = Uuid::now_v7();
        let now = Utc::now().timestamp();
        let (a, b) = (
            claims(sub, StaffRole::Nurse, now),
            claims(sub, StaffRole::Nurse, now),
        );
        revocations.revoke_locally(a.jti, a.exp, Revoked::LoggedOut);
        assert_eq!(revocations.check(&a), Err(Revoked::LoggedOut));
        assert_eq!(revocations.check(&b), Ok(()));
    }

    #[test]
    fn account_changes_revoke_earlier_tokens() {
        let revocations = loaded();
        let id = Uuid::now_v7();
        revocations.apply(&event(id, 1, "created", 100, |_| {}));
        let old = claims(id, StaffRole::Nurse, 150);
        assert_eq!(revocations.check(&old), Ok(()));

        revocations.apply(&event(id, 2, PASSWORD_CHANGED, 200, |_| {}));
        assert_eq!(revocations.check(&old), Err(Revoked::PasswordChanged));
        assert_eq!(
            revocations.check(&claims(id, StaffRole::Nurse, 200)),
            Ok(())
        );

        revocations.apply(&event(id, 3, "updated", 300, |s| {
            s.role = StaffRole::Doctor
        }));
        assert_eq!(
            revocations.check(&claims(id, StaffRole::Nurse, 250)),
            Err(Revoked::RoleChanged)
        );
        assert_eq!(
            revocations.check(&claims(id, StaffRole::Doctor, 250)),
            Err(Revoked::PasswordChanged),
            "a token older than the role change is refused whatever role it names"
        );
        assert_eq!(
            revocations.check(&claims(id, StaffRole::Doctor, 300)),
            Ok(())
        );

        revocations.apply(&event(id, 4, "deleted", 400, |s| {
            s.deleted_at = Some(Utc::now())
        }));
        assert_eq!(
            revocations.check(&claims(id, StaffRole::Doctor, 500)),
            Err(Revoked::AccountClosed)
        );
    }

    #[test]
    fn removing_the_login_closes_the_account_and_old_events_change_nothing() {
        let revocations = loaded();
        let id = Uuid::now_v7();
        revocations.apply(&event(id, 2, "updated", 200, |s| s.username = None));
        revocations.apply(&event(id, 1, "created", 100, |_| {}));
        assert_eq!(
            revocations.check(&claims(id, StaffRole::Nurse, 300)),
            Err(Revoked::AccountClosed)
        );
    }
}
