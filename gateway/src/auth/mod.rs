//! Authentication and authorisation.
//!
//! - [`jwt`]: issuing and verifying the HS256 access tokens.
//! - [`login`]: `POST /auth/login`, checked by the staff service.
//! - [`caller`]: the [`Caller`] extractor, which makes a route require a valid bearer token.
//! - [`permissions`]: the one place that decides whether a caller may do an action.

pub mod caller;
pub mod jwt;
pub mod login;
pub mod permissions;

pub use caller::Caller;
pub use jwt::{Claims, IssuedToken, TokenError, Tokens};
pub use permissions::{Action, authorize};
