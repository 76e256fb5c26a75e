//! Authentication and authorisation.
//!
//! - [`jwt`]: issuing and verifying the HS256 access tokens.
//! - [`login`]: `POST /auth/login`, checked (and failed logins limited) by the staff service.
//! - [`session`]: `POST /auth/logout` and `POST /auth/password`.
//! - [`revocation`]: tokens refused before they expire (logouts, account changes).
//! - [`caller`]: the [`Caller`] extractor, which makes a route require a valid bearer token.
//! - [`permissions`]: the permission matrix, the one place that says who may do what.

pub mod body;
pub mod caller;
pub mod jwt;
pub mod login;
pub mod permissions;
pub mod revocation;
pub mod session;

pub use caller::Caller;
pub use jwt::{Claims, IssuedToken, TokenError, Tokens};
pub use permissions::Action;
