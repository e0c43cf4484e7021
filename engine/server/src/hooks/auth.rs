//! Checking that a delivery comes from its source: a bearer token, basic
//! credentials, or an HMAC-SHA256 signature over the timestamp and the raw
//! body inside a replay window. Every comparison of a secret is constant
//! time; a refusal names its reason (for the audit log) but never the
//! secret or what was presented.

use axum::http::{HeaderMap, header};
use cordon_notify::Secret;
use hmac::{KeyInit as _, Mac as _};
use subtle::ConstantTimeEq as _;

/// A source's authentication, secrets resolved.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A signature over `"{timestamp}.{body}"`.
    Hmac {
        /// The shared key.
        secret: Secret,
        /// The signature's header.
        header: String,
        /// The timestamp's header.
        timestamp_header: String,
        /// The replay window, seconds either side of now.
        tolerance_secs: u64,
    },
}

/// Why a delivery was refused (the audit event's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No credentials or no signature at all.
    Missing,
    /// Credentials that are not the source's.
    BadCredentials,
    /// A signature that does not verify (forged, or over another body).
    BadSignature,
    /// A timestamp outside the replay window, or not a number.
    Stale,
    /// A signature already spent.
    Replayed,
}

impl Refusal {
    /// The reason as recorded.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing_credentials",
            Refusal::BadCredentials => "bad_credentials",
            Refusal::BadSignature => "bad_signature",
            Refusal::Stale => "stale_timestamp",
            Refusal::Replayed => "replayed_signature",
        }
    }
}

/// A signature that verified: spend it (replay protection) until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// The signature as hex.
    pub(crate) signature: String,
    /// The end of its replay window, Unix seconds.
    pub(crate) expires_at: i64,
}

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Decodes standard base64 (RFC 4648, padded), the way `Authorization:
/// Basic` is written; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for b in bytes {
        let value = ALPHABET.iter().position(|a| a == b)?;
        buffer = (buffer << 6) | u32::try_from(value).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

impl Auth {
    /// Checks the request. `Ok(Some(_))` is a verified signature still to
    /// be spent; `Ok(None)` a bearer or basic request that passed.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<Option<Signed>, Refusal> {
        let authorization = || {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        match self {
            Auth::Bearer(token) => {
                let presented = authorization()
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .ok_or(Refusal::Missing)?;
                if eq(presented.trim().as_bytes(), token.expose().as_bytes()) {
                    Ok(None)
                } else {
                    Err(Refusal::BadCredentials)
                }
            }
            Auth::Basic { username, password } => {
                let encoded = authorization()
                    .and_then(|v| {
                        v.strip_prefix("Basic ")
                            .or_else(|| v.strip_prefix("basic "))
                    })
                    .ok_or(Refusal::Missing)?;
                let decoded = base64_decode(encoded.trim()).ok_or(Refusal::BadCredentials)?;
                let expected = format!("{username}:{}", password.expose());
                if eq(&decoded, expected.as_bytes()) {
                    Ok(None)
                } else {
                    Err(Refusal::BadCredentials)
                }
            }
            Auth::Hmac {
                secret,
                header,
                timestamp_header,
                tolerance_secs,
            } => {
                let read = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let (Some(signature), Some(timestamp)) = (read(header), read(timestamp_header))
                else {
                    return Err(Refusal::Missing);
                };
                let signature = signature.trim();
                let signature = signature.strip_prefix("sha256=").unwrap_or(signature);
                let presented = hex::decode(signature).map_err(|_| Refusal::BadSignature)?;
                let timestamp = timestamp.trim();
                let mut mac =
                    hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
                        .map_err(|_| Refusal::BadSignature)?;
                mac.update(timestamp.as_bytes());
                mac.update(b".");
                mac.update(body);
                // Verified before the timestamp is believed: an unsigned
                // timestamp says nothing.
                mac.verify_slice(&presented)
                    .map_err(|_| Refusal::BadSignature)?;
                let at: i64 = timestamp.parse().map_err(|_| Refusal::Stale)?;
                let tolerance = i64::try_from(*tolerance_secs).unwrap_or(i64::MAX);
                if now_unix.abs_diff(at) > tolerance.unsigned_abs() {
                    return Err(Refusal::Stale);
                }
                Ok(Some(Signed {
                    signature: hex::encode(presented),
                    expires_at: at.saturating_add(tolerance),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn hmac_auth() -> Auth {
        Auth::Hmac {
            secret: Secret::new("s3cret"),
            header: "x-cordon-signature".into(),
            timestamp_header: "x-cordon-timestamp".into(),
            tolerance_secs: 300,
        }
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn hmac_accepts_a_fresh_signature_and_refuses_forged_stale_and_missing() {
        let body = br#"{"a":1}"#;
        let auth = hmac_auth();
        let good = headers(&[
            ("x-cordon-timestamp", "1000".into()),
            (
                "x-cordon-signature",
                format!("sha256={}", sign("s3cret", "1000", body)),
            ),
        ]);
        let signed = auth
            .check(&good, body, 1100)
            .expect("valid")
            .expect("signed");
        assert_eq!(signed.expires_at, 1300);
        assert_eq!(auth.check(&good, b"{}", 1100), Err(Refusal::BadSignature));
        assert_eq!(auth.check(&good, body, 1400), Err(Refusal::Stale));
        let forged = headers(&[
            ("x-cordon-timestamp", "1000".into()),
            ("x-cordon-signature", sign("other", "1000", body)),
        ]);
        assert_eq!(auth.check(&forged, body, 1000), Err(Refusal::BadSignature));
        assert_eq!(
            auth.check(&HeaderMap::new(), body, 1000),
            Err(Refusal::Missing)
        );
    }

    #[test]
    fn bearer_and_basic_compare_the_whole_secret() {
        let bearer = Auth::Bearer(Secret::new("tok"));
        let ok = headers(&[("authorization", "Bearer tok".into())]);
        assert_eq!(bearer.check(&ok, b"", 0), Ok(None));
        let bad = headers(&[("authorization", "Bearer tok2".into())]);
        assert_eq!(bearer.check(&bad, b"", 0), Err(Refusal::BadCredentials));
        let basic = Auth::Basic {
            username: "grafana".into(),
            password: Secret::new("pw"),
        };
        // base64("grafana:pw")
        let ok = headers(&[("authorization", "Basic Z3JhZmFuYTpwdw==".into())]);
        assert_eq!(basic.check(&ok, b"", 0), Ok(None));
        assert_eq!(
            basic.check(&HeaderMap::new(), b"", 0),
            Err(Refusal::Missing)
        );
        assert_eq!(
            base64_decode("Z3JhZmFuYTpwdw=="),
            Some(b"grafana:pw".to_vec())
        );
    }
}
