//! Access tokens: HS256 JWTs issued at login and checked on every `/api` call.
//!
//! Verification is strict: the HS256 algorithm only (no `none`, no algorithm confusion), and
//! `exp`, `iss`, `aud` and `sub` must be present and right. The claims are typed, so a token
//! naming an unknown role or a subject that is not a staff id is refused too.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use shared_events::Authenticated;
use shared_events::staff::StaffRole;
use uuid::Uuid;

/// Who issues our tokens (`iss`).
pub const ISSUER: &str = "smart-healthcare";
/// Who our tokens are for (`aud`).
pub const AUDIENCE: &str = "hospital-api";
/// Tolerated clock difference between gateway instances, in seconds.
const LEEWAY_SECS: u64 = 5;

/// The claims of an access token: who the caller is and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The staff member's id.
    pub sub: Uuid,
    pub role: StaffRole,
    pub name: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// Unique per token, so one can be revoked or traced later. A UUID v7: it also dates the
    /// token to the millisecond (see `revocation`).
    pub jti: Uuid,
}

/// What login hands the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// Why a token was refused. Clients learn only "expired" or "invalid".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid")]
    Invalid,
}

/// The signing and verifying keys, made once from `JWT_SECRET_KEY`; shared by every request.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// How long an issued token is valid (`JWT_TTL_MINUTES`).
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are the secret: never printed.
        f.debug_struct("Tokens").field("ttl", &self.ttl).finish()
    }
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for a staff member who just logged in.
    pub fn issue(&self, who: &Authenticated) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        self.issue_at(who, chrono::Utc::now().timestamp())
    }

    /// A token as if issued at `now` (seconds since the epoch); tests issue expired ones.
    pub fn issue_at(
        &self,
        who: &Authenticated,
        now: i64,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let ttl = self.ttl.as_secs();
        let claims = Claims {
            sub: who.staff_id,
            role: who.role,
            name: who.name.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            jti: Uuid::now_v7(),
        };
        Ok(IssuedToken {
            access_token: self.sign(&claims)?,
            token_type: "Bearer".to_owned(),
            expires_in: ttl,
        })
    }

    /// Signs any claims with our key (HS256).
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// The claims of a token we issued and that is still valid.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";

    fn tokens() -> Tokens {
        Tokens::new(SECRET, Duration::from_secs(15 * 60))
    }

    fn ada() -> Authenticated {
        Authenticated {
            staff_id: Uuid::now_v7(),
            name: "Ada Lovelace".into(),
            role: StaffRole::Doctor,
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let who = ada();
        let issued = tokens().issue(&who).unwrap();
        assert_eq!(issued.token_type, "Bearer");
        assert_eq!(issued.expires_in, 900);
        let claims = tokens().verify(&issued.access_token).unwrap();
        assert_eq!(claims.sub, who.staff_id);
        assert_eq!(claims.role, StaffRole::Doctor);
        assert_eq!(claims.name, "Ada Lovelace");
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn each_token_has_its_own_id() {
        let who = ada();
        let a = tokens().verify(&tokens().issue(&who).unwrap().access_token);
        let b = tokens().verify(&tokens().issue(&who).unwrap().access_token);
        assert_ne!(a.unwrap().jti, b.unwrap().jti);
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let issued = tokens().issue_at(&ada(), now() - 3600).unwrap();
        assert_eq!(
            tokens().verify(&issued.access_token),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let issued = tokens().issue_at(&ada(), now() + 3600).unwrap();
        assert_eq!(
            tokens().verify(&issued.access_token),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let token = tokens().issue(&ada()).unwrap().access_token;
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        // Re-sign nothing: swap in a payload claiming to be an admin.
        let admin = tokens()
            .issue(&Authenticated {
                role: StaffRole::Admin,
                ..ada()
            })
            .unwrap()
            .access_token;
        parts[1] = admin.split('.').nth(1).unwrap().to_owned();
        parts[2] = token.split('.').nth(2).unwrap().to_owned();
        assert_eq!(tokens().verify(&parts.join(".")), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = Tokens::new(
            b"another-secret-of-at-least-32-bytes!",
            Duration::from_secs(60),
        );
        let token = other.issue(&ada()).unwrap().access_token;
        assert_eq!(tokens().verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_for_another_audience_or_issuer_is_refused() {
        let good = tokens()
            .verify(&tokens().issue(&ada()).unwrap().access_token)
            .unwrap();
        let wrong_audience = Claims {
            aud: "some-other-api".into(),
            ..good.clone()
        };
        let wrong_issuer = Claims {
            iss: "someone-else".into(),
            ..good
        };
        for claims in [wrong_audience, wrong_issuer] {
            let token = tokens().sign(&claims).unwrap();
            assert_eq!(tokens().verify(&token), Err(TokenError::Invalid));
        }
    }

    #[test]
    fn a_token_without_expiry_is_refused() {
        let claims = serde_json::json!({
            "sub": Uuid::now_v7(), "role": "admin", "name": "x",
            "iat": now(), "nbf": now(), "iss": ISSUER, "aud": AUDIENCE, "jti": Uuid::new_v4(),
        });
        let token = tokens().sign(&claims).unwrap();
        assert_eq!(tokens().verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn other_algorithms_and_unsigned_tokens_are_refused() {
        let claims = tokens()
            .verify(&tokens().issue(&ada()).unwrap().access_token)
            .unwrap();
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(tokens().verify(&hs384), Err(TokenError::Invalid));

        // {"alg":"none","typ":"JWT"} with the genuine payload and no signature.
        let payload = hs384.split('.').nth(1).unwrap();
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(tokens().verify(&unsigned), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_is_refused() {
        for junk in ["", "abc", "a.b.c", "....", "Bearer x"] {
            assert_eq!(tokens().verify(junk), Err(TokenError::Invalid), "{junk:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_keys() {
        assert!(!format!("{:?}", tokens()).contains("secret"));
    }
}
