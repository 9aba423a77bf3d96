//! HS256 tokens exactly as djangorestframework-jwt 1.11 issues and checks them: header
//! `{"typ":"JWT","alg":"HS256"}`, claims `user_id, username, exp, email` in that order, no
//! leeway, and (a PyJWT 1.x quirk) no `exp` required.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub user_id: i64,
    pub username: String,
    pub exp: i64,
    pub email: String,
}

/// What a token check can say, with the exact `detail` text the real server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Expired,
    BadSignature,
    InvalidPayload,
}

impl Rejection {
    pub fn detail(&self) -> &'static str {
        match self {
            Rejection::Expired => "Signature has expired.",
            Rejection::BadSignature => "Error decoding signature.",
            Rejection::InvalidPayload => "Invalid payload.",
        }
    }
}

/// Signs claims; byte-for-byte the tokens the real server issues.
pub fn sign(claims: &Claims, secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
    let header = Header {
        typ: Some("JWT".into()),
        ..Header::new(Algorithm::HS256)
    };
    encode_with(&header, claims, secret)
}

fn encode_with(
    header: &Header,
    claims: &Claims,
    secret: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes())?,
    )
}

#[derive(Debug, Deserialize)]
pub struct LooseClaims {
    pub username: Option<String>,
    pub exp: Option<i64>,
}

/// Checks signature and expiry (leeway 0); returns the username.
pub fn verify(token: &str, secret: &str) -> Result<String, Rejection> {
    let key = DecodingKey::from_secret(secret.as_bytes()).map_err(|_| Rejection::BadSignature)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<LooseClaims>(token, &key, &validation) {
        Ok(data) => data.claims.username.ok_or(Rejection::InvalidPayload),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(Rejection::Expired),
            _ => Err(Rejection::BadSignature),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_expiry_and_wrong_key() {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let claims = Claims {
            user_id: 1,
            username: "root".into(),
            exp: now + 60,
            email: "root@email.com".into(),
        };
        let token = sign(&claims, "supersecret").unwrap();
        assert_eq!(verify(&token, "supersecret"), Ok("root".to_string()));
        assert_eq!(verify(&token, "other"), Err(Rejection::BadSignature));
        assert_eq!(
            verify("not-logged-in-no-token", "supersecret"),
            Err(Rejection::BadSignature)
        );
        let old = sign(
            &Claims {
                exp: now - 1,
                ..claims
            },
            "supersecret",
        )
        .unwrap();
        assert_eq!(verify(&old, "supersecret"), Err(Rejection::Expired));
    }
}
