//! Bearer JWTs: the keys a token may be signed with, and the check of one
//! token (signature, `exp`, `aud`, `iss`, `sub`).
//!
//! `jsonwebtoken` parses tokens, JWKS files and claims; it has no crypto of
//! its own here (no default features). The signatures are checked by
//! [`RING`], a `CryptoProvider` over ring, which async-nats already builds
//! for TLS: no second crypto stack in the binary. Only four algorithms are
//! accepted: HS256 (with `OMS_JWT_SECRET`), EdDSA (Ed25519), ES256 and RS256
//! (with a JWKS file). A key is tied to one algorithm, so a token cannot
//! pick another one for it (no `alg` confusion).

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey, Validation};
use ring::signature as sig;

/// At most this much clock skew is forgiven on `exp` (and `nbf`).
pub const LEEWAY_SECS: u64 = 60;

/// A key and the one algorithm it verifies.
struct Key {
    kid: Option<String>,
    validation: Validation,
    key: DecodingKey,
}

/// Every key a token may be signed with.
pub struct Keys {
    keys: Vec<Key>,
}

/// The claims the gateway reads; the standard ones are checked by the library.
/// (`sub` defaults to empty so that a missing one is reported as missing
/// by the claim check, not as a JSON error.)
#[derive(serde::Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Keys {
    /// `OMS_JWT_SECRET`: HS256 with this secret (at least 32 bytes, as
    /// RFC 7518 asks of an HS256 key).
    pub fn secret(secret: &[u8], audience: &str, issuer: Option<&str>) -> Result<Keys, String> {
        install();
        if secret.len() < 32 {
            return Err(format!(
                "a secret of at least 32 bytes, as HS256 needs (it has {})",
                secret.len()
            ));
        }
        let key = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        Ok(Keys {
            keys: vec![Key {
                kid: None,
                validation: validation(Algorithm::HS256, audience, issuer),
                key,
            }],
        })
    }

    /// `OMS_JWT_PUBLIC_KEYS`: a JWKS document. Each key's algorithm comes
    /// from its `alg`, else from its type (OKP Ed25519 -> EdDSA, EC P-256 ->
    /// ES256, RSA -> RS256); any other key is an error, not skipped, so a
    /// typo cannot leave the gateway with fewer keys than meant.
    pub fn jwks(json: &str, audience: &str, issuer: Option<&str>) -> Result<Keys, String> {
        install();
        let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("not a JWKS: {e}"))?;
        if set.keys.is_empty() {
            return Err("the JWKS has no keys".into());
        }
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let by_type = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Algorithm::EdDSA
                }
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => {
                    return Err(format!(
                        "key {i}: only Ed25519, P-256 and RSA public keys are accepted"
                    ))
                }
            };
            if let Some(alg) = jwk.common.key_algorithm {
                if alg.to_string() != format!("{by_type:?}") {
                    return Err(format!("key {i}: alg {alg} does not fit its key type"));
                }
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {i}: {e}"))?;
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                validation: validation(by_type, audience, issuer),
                key,
            });
        }
        Ok(Keys { keys })
    }

    /// Checks a token: the keys of its header's `alg` (and `kid`, when it
    /// names one) are tried; the first that verifies decides.
    pub fn verify(&self, token: &str) -> Result<Claims, ErrorKind> {
        let header = jsonwebtoken::decode_header(token).map_err(Error::into_kind)?;
        let mut last = ErrorKind::InvalidSignature;
        let candidates = self.keys.iter().filter(|k| {
            k.validation.algorithms[0] == header.alg
                && (header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
        });
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
                Ok(data) => return Ok(data.claims),
                Err(err) => match err.into_kind() {
                    ErrorKind::InvalidSignature => last = ErrorKind::InvalidSignature,
                    other => return Err(other),
                },
            }
        }
        if self
            .keys
            .iter()
            .all(|k| k.validation.algorithms[0] != header.alg)
        {
            return Err(ErrorKind::InvalidAlgorithm);
        }
        Err(last)
    }
}

fn validation(alg: Algorithm, audience: &str, issuer: Option<&str>) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.set_audience(&[audience]);
    let mut required = vec!["exp", "sub", "aud"];
    if let Some(issuer) = issuer {
        v.set_issuer(&[issuer]);
        required.push("iss");
    }
    v.set_required_spec_claims(&required);
    v
}

/// An HS256 token for `claims` (what `gateway token` prints).
pub fn sign_hs256(secret: &[u8], claims: &serde_json::Value) -> Result<String, String> {
    install();
    let key = EncodingKey::from_secret(secret).map_err(|e| e.to_string())?;
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), claims, &key)
        .map_err(|e| e.to_string())
}

/// Makes [`RING`] the process's provider; call before the first token.
pub fn install() {
    let _ = RING.install_default();
}

/// The ring-backed provider: verifies HS256, EdDSA, ES256 and RS256, and
/// signs HS256 (development tokens). Everything else is refused.
pub static RING: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

enum Check {
    Hmac(ring::hmac::Key),
    Public(&'static dyn sig::VerificationAlgorithm, Vec<u8>),
    Rsa(Vec<u8>, Vec<u8>),
}

struct RingVerifier(Algorithm, Check);

fn verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    let check = match (alg, key.kind()) {
        (Algorithm::HS256, DecodingKeyKind::SecretOrDer(secret)) => {
            Check::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
        }
        (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(raw)) => {
            Check::Public(&sig::ED25519, raw.clone())
        }
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
            Check::Public(&sig::ECDSA_P256_SHA256_FIXED, point.clone())
        }
        (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            Check::Rsa(n.clone(), e.clone())
        }
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingVerifier(*alg, check)))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let ok = match &self.1 {
            Check::Hmac(key) => ring::hmac::verify(key, msg, signature).is_ok(),
            Check::Public(alg, key) => sig::UnparsedPublicKey::new(*alg, key)
                .verify(msg, signature)
                .is_ok(),
            Check::Rsa(n, e) => sig::RsaPublicKeyComponents { n, e }
                .verify(&sig::RSA_PKCS1_2048_8192_SHA256, msg, signature)
                .is_ok(),
        };
        ok.then_some(()).ok_or_else(signature::Error::new)
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.0
    }
}

struct HmacSigner(ring::hmac::Key);

fn signer(alg: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    match alg {
        Algorithm::HS256 => Ok(Box::new(HmacSigner(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            key.as_bytes(),
        )))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

impl Signer<Vec<u8>> for HmacSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(ring::hmac::sign(&self.0, msg).as_ref().to_vec())
    }
}

impl JwtSigner for HmacSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn hs256_round_trip_and_claim_checks() {
        let keys = Keys::secret(SECRET, "oms", None).unwrap();
        let good = sign_hs256(
            SECRET,
            &json!({"sub": "c-1", "aud": "oms", "exp": now() + 60, "roles": ["customer"]}),
        )
        .unwrap();
        let claims = keys.verify(&good).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.roles),
            ("c-1", vec!["customer".to_string()])
        );
        let within_leeway = sign_hs256(
            SECRET,
            &json!({"sub": "c", "aud": "oms", "exp": now() - 30}),
        )
        .unwrap();
        assert!(keys.verify(&within_leeway).is_ok());
        for (claims, want) in [
            (
                json!({"sub": "c", "aud": "oms", "exp": now() - 120}),
                ErrorKind::ExpiredSignature,
            ),
            (
                json!({"sub": "c", "aud": "other", "exp": now() + 60}),
                ErrorKind::InvalidAudience,
            ),
            (
                json!({"sub": "c", "exp": now() + 60}),
                ErrorKind::MissingRequiredClaim("aud".into()),
            ),
            (
                json!({"aud": "oms", "exp": now() + 60}),
                ErrorKind::MissingRequiredClaim("sub".into()),
            ),
            (
                json!({"sub": "c", "aud": "oms"}),
                ErrorKind::MissingRequiredClaim("exp".into()),
            ),
            // A string exp counts as none: refused, not skipped (CVE-2026-25537).
            (
                json!({"sub": "c", "aud": "oms", "exp": "never"}),
                ErrorKind::MissingRequiredClaim("exp".into()),
            ),
            (
                json!({"sub": "c", "aud": "oms", "exp": now() + 60, "nbf": now() + 600}),
                ErrorKind::ImmatureSignature,
            ),
        ] {
            let token = sign_hs256(SECRET, &claims).unwrap();
            assert_eq!(keys.verify(&token).err(), Some(want), "{claims}");
        }
        let other = sign_hs256(
            b"another-secret-another-secret-xx",
            &json!({"sub": "c", "aud": "oms", "exp": now() + 60}),
        )
        .unwrap();
        assert_eq!(keys.verify(&other).err(), Some(ErrorKind::InvalidSignature));
        assert!(keys.verify("not.a.token").is_err());
        assert!(Keys::secret(b"short", "oms", None).is_err());
    }

    #[test]
    fn issuer_is_required_when_configured() {
        let keys = Keys::secret(SECRET, "oms", Some("https://id.example")).unwrap();
        let none = sign_hs256(
            SECRET,
            &json!({"sub": "c", "aud": "oms", "exp": now() + 60}),
        )
        .unwrap();
        assert_eq!(
            keys.verify(&none).err(),
            Some(ErrorKind::MissingRequiredClaim("iss".into()))
        );
        let wrong = sign_hs256(
            SECRET,
            &json!({"sub": "c", "aud": "oms", "exp": now() + 60, "iss": "x"}),
        )
        .unwrap();
        assert_eq!(keys.verify(&wrong).err(), Some(ErrorKind::InvalidIssuer));
    }

    #[test]
    fn jwks_keys_are_typed_and_checked() {
        let ed = ring::signature::Ed25519KeyPair::from_pkcs8(
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .unwrap()
                .as_ref(),
        )
        .unwrap();
        use ring::signature::KeyPair;
        let x = b64(ed.public_key().as_ref());
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1"}]});
        let keys = Keys::jwks(&jwks.to_string(), "oms", None).unwrap();
        let header = b64(br#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#);
        let body = b64(json!({"sub": "s", "aud": "oms", "exp": now() + 60})
            .to_string()
            .as_bytes());
        let message = format!("{header}.{body}");
        let token = format!("{message}.{}", b64(ed.sign(message.as_bytes()).as_ref()));
        assert_eq!(keys.verify(&token).unwrap().sub, "s");
        // An HS256 token is refused by a key set without a secret.
        let hs = sign_hs256(
            SECRET,
            &json!({"sub": "s", "aud": "oms", "exp": now() + 60}),
        )
        .unwrap();
        assert_eq!(keys.verify(&hs).err(), Some(ErrorKind::InvalidAlgorithm));

        let mismatched =
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "RS256"}]});
        assert!(Keys::jwks(&mismatched.to_string(), "oms", None).is_err());
        let symmetric = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(Keys::jwks(&symmetric.to_string(), "oms", None).is_err());
        assert!(Keys::jwks(r#"{"keys":[]}"#, "oms", None).is_err());
    }

    fn b64(bytes: &[u8]) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |n, b| n << 8 | *b as u32) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}
