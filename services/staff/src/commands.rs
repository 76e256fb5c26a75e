//! The staff service's NATS commands: the staff CRUD of every owning service, plus
//! `authenticate`, which checks a login for the gateway, and `change_password`, a staff
//! member's change of their own password.

use bytes::Bytes;
use kit::EventPublisher;
use kit::command::{CommandHandler, RequestContext, decode, to_json};
use kit::events::now;
use serde_json::Value;
use shared_events::subjects::action;
use shared_events::{
    Authenticate, Authenticated, ChangePassword, Create, Delete, FieldError, GetById, ListQuery,
    ServiceError, Update,
};
use uuid::Uuid;

use crate::domain::{self, LoginRequest, PasswordChange, StaffDetails};
use crate::login_limits::FailedLogins;
use crate::passwords;
use crate::store::{Committed, HashUpdate, StaffStore};

pub const ACTIONS: &[&str] = &[
    action::CREATE,
    action::GET,
    action::LIST,
    action::UPDATE,
    action::DELETE,
    action::AUTHENTICATE,
    action::CHANGE_PASSWORD,
];

/// The event verb of a change of password; gateways revoke the account's earlier tokens on it.
pub const PASSWORD_CHANGED: &str = "password_changed";

pub struct StaffCommands {
    pub store: StaffStore,
    /// The failed-login limits, counted in the same database.
    pub failed_logins: FailedLogins,
    pub publisher: EventPublisher,
}

impl CommandHandler for StaffCommands {
    async fn handle(
        &self,
        action: &str,
        context: RequestContext,
        payload: Bytes,
    ) -> Result<Value, ServiceError> {
        match action {
            action::CREATE => {
                let command: Create = decode(&payload)?;
                let committed = self
                    .create(StaffDetails::parse(&command.fields)?, &context)
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.staff)
                    .await
            }
            action::GET => {
                let command: GetById = decode(&payload)?;
                let staff = self
                    .store
                    .get(command.id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("staff member"))?;
                to_json(&staff)
            }
            action::LIST => {
                let query: ListQuery = decode(&payload)?;
                kit::listing::refuse_unknown_filters(&query, &[])?;
                to_json(&self.store.list(&query).await?)
            }
            action::UPDATE => {
                let command: Update = decode(&payload)?;
                let details = StaffDetails::parse(&command.fields)?;
                // Hash before the write transaction: argon2 is slow and must not hold the lock.
                let new_hash = match requested_password(&details.login) {
                    Some(password) => Some(passwords::hash(password.to_owned()).await?),
                    None => None,
                };
                // An administrator's reset of someone's password ends that person's sessions.
                let verb = if new_hash.is_some() {
                    PASSWORD_CHANGED
                } else {
                    "updated"
                };
                let committed = self
                    .store
                    .change(command.id, verb, &context, move |current| {
                        let decided =
                            domain::update(current, command.expected_version, &details, now())?;
                        Ok(decided
                            .map(|(staff, password)| (staff, hash_update(password, &new_hash))))
                    })
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.staff)
                    .await
            }
            action::DELETE => {
                let command: Delete = decode(&payload)?;
                let committed = self
                    .store
                    .change(command.id, "deleted", &context, move |current| {
                        let (staff, password) =
                            domain::delete(current, command.expected_version, now())?;
                        Ok(Some((staff, hash_update(password, &None))))
                    })
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.staff)
                    .await
            }
            action::AUTHENTICATE => {
                let command: Authenticate = decode(&payload)?;
                to_json(&self.authenticate(command).await?)
            }
            action::CHANGE_PASSWORD => {
                let command: ChangePassword = decode(&payload)?;
                let (committed, who) = self.change_password(command, &context).await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &who)
                    .await
            }
            other => Err(ServiceError::bad_request(format!("unknown action {other}"))),
        }
    }
}

impl StaffCommands {
    /// Registers a staff member (with a login when a username and password are given).
    pub async fn create(
        &self,
        details: StaffDetails,
        context: &RequestContext,
    ) -> Result<Committed, ServiceError> {
        let (username, password) = domain::new_login(&details.login)?;
        let password_hash = match password {
            PasswordChange::Set(password) => Some(passwords::hash(password).await?),
            PasswordChange::Keep | PasswordChange::Clear => None,
        };
        let staff = domain::register(&details, username, now());
        self.store.create(staff, password_hash, context).await
    }

    /// The acting staff member changes their own password, proving they know the current one.
    async fn change_password(
        &self,
        command: ChangePassword,
        context: &RequestContext,
    ) -> Result<(Committed, Authenticated), ServiceError> {
        let staff_id: Uuid = context.actor.id.parse().map_err(|_| {
            ServiceError::unauthorized("only a logged-in staff member has a password")
        })?;
        let account = match self.store.get(staff_id).await?.and_then(|s| s.username) {
            Some(username) => self.store.account(&username).await?,
            None => None,
        }
        .ok_or_else(|| ServiceError::unauthorized("this account has no login"))?;
        let mut problems = Vec::new();
        if !passwords::verify(
            command.current_password.clone(),
            Some(account.password_hash),
        )
        .await
        {
            problems.push((
                "current_password",
                "is not your current password".to_owned(),
            ));
        }
        if let Some(weakness) = passwords::weakness(&command.new_password) {
            problems.push(("new_password", weakness));
        } else if command.new_password == command.current_password {
            problems.push((
                "new_password",
                "must differ from the current password".to_owned(),
            ));
        }
        if !problems.is_empty() {
            return Err(ServiceError::validation(
                problems
                    .into_iter()
                    .map(|(field, message)| FieldError {
                        field: field.to_owned(),
                        message,
                    })
                    .collect(),
            ));
        }
        let hash = passwords::hash(command.new_password).await?;
        let committed = self
            .store
            .change(staff_id, PASSWORD_CHANGED, context, move |current| {
                let mut next = current.clone();
                next.version += 1;
                next.updated_at = now().max(current.updated_at);
                Ok(Some((next, HashUpdate::Set(hash))))
            })
            .await?;
        let who = Authenticated {
            staff_id,
            name: committed.staff.name.clone(),
            role: committed.staff.role,
        };
        Ok((committed, who))
    }

    /// The same answer, and about the same time, for an unknown user and a wrong password.
    /// Too many failures for the username or the client address are refused first, before any
    /// hashing (see [`crate::login_limits`]).
    async fn authenticate(&self, command: Authenticate) -> Result<Authenticated, ServiceError> {
        let attempt = self
            .failed_logins
            .admit(&command.username, command.client_address)
            .await
            .inspect_err(|error| {
                if let Some(wait) = error.retry_after_secs {
                    tracing::warn!(username = %command.username, address = ?command.client_address,
                        retry_after_secs = wait, "login refused: too many failures");
                }
            })?;
        let username = command.username.trim().to_lowercase();
        let account = self.store.account(&username).await?;
        let stored = account.as_ref().map(|a| a.password_hash.clone());
        // `verify` checks against a dummy hash when there is no account: same cost either way.
        let matches = passwords::verify(command.password, stored).await;
        match account {
            Some(account) if matches => {
                // The login stands even if forgetting the failures fails: it only stays
                // counted as one.
                if let Err(error) = self.failed_logins.forgive(attempt).await {
                    tracing::warn!(?error, "a successful login still counts as a failure");
                }
                Ok(Authenticated {
                    staff_id: account.staff_id,
                    name: account.name,
                    role: account.role,
                })
            }
            _ => Err(invalid_login()),
        }
    }
}

fn invalid_login() -> ServiceError {
    ServiceError::unauthorized("invalid username or password")
}

/// The new password a request carries, if any.
fn requested_password(login: &LoginRequest) -> Option<&str> {
    match login {
        LoginRequest::Keep {
            new_password: Some(p),
        }
        | LoginRequest::Set {
            password: Some(p), ..
        } => Some(p),
        _ => None,
    }
}

/// The domain's decision about the password, with the password already hashed.
fn hash_update(decision: PasswordChange, new_hash: &Option<String>) -> HashUpdate {
    match (decision, new_hash) {
        (PasswordChange::Set(_), Some(hash)) => HashUpdate::Set(hash.clone()),
        (PasswordChange::Clear, _) => HashUpdate::Clear,
        _ => HashUpdate::Keep,
    }
}
