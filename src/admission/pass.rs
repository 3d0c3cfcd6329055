//! Admission passes as standard JWTs (RFC 7519, HS256): any service verifies one with an ordinary
//! JWT library and the shared key, without calling Redis. Claims:
//! `iss` "seatq", `evt` the event key, `sub` the user, `tkt` the ticket's serial, `iat`/`exp`
//! (seconds); the header names the key (`kid`). Keys come from `seatq.pass-keys` (several, for
//! rotation; the first signs); without configured keys an event signs with its own derived key
//! (kid `event`), which only seatq itself can check.
//!
//! Event keys and user IDs that are not UTF-8 travel base64url-encoded in `evt_b64`/`sub_b64`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const ISSUER: &str = "seatq";
/// The `kid` of passes signed with the event's own key.
pub const EVENT_KID: &str = "event";
/// HS256 keys shorter than the hash output are refused (RFC 7518 section 3.2).
pub const MIN_KEY_LEN: usize = 32;

/// A signing key, prepared: the HMAC keyed once (a fresh one per pass costs two more SHA-256
/// blocks) and the encoded header of the passes it signs.
#[derive(Clone)]
pub struct PassKey {
    pub kid: String,
    secret: Vec<u8>,
    header: String,
    mac: HmacSha256,
}

impl PartialEq for PassKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.secret == other.secret
    }
}

impl Eq for PassKey {}

impl PassKey {
    pub fn new(kid: &str, secret: &[u8]) -> Self {
        Self {
            kid: kid.to_string(),
            secret: secret.to_vec(),
            header: header_segment(kid),
            mac: HmacSha256::new_from_slice(secret).expect("HMAC takes any key length"),
        }
    }

    /// An event's own key (kid `event`).
    pub fn event(secret: &[u8; 32]) -> Self {
        Self::new(EVENT_KID, secret)
    }

    fn mac(&self, signing_input: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(signing_input);
        mac
    }
}

impl std::fmt::Debug for PassKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PassKey({})", self.kid)
    }
}

/// Parses `seatq.pass-keys`: `kid:secret` items separated by spaces, the first one signs.
pub fn parse_keys(text: &str) -> Result<Vec<PassKey>, String> {
    let mut keys: Vec<PassKey> = Vec::new();
    for item in text.split_ascii_whitespace() {
        let (kid, secret) = item.split_once(':').ok_or_else(|| {
            format!(
                "pass key '{}' is not kid:secret",
                item.split(':').next().unwrap_or("")
            )
        })?;
        let valid_kid = !kid.is_empty()
            && kid.len() <= 64
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_kid || kid == EVENT_KID {
            return Err(format!(
                "pass key id '{kid}' must be 1-64 of [A-Za-z0-9._-] and not '{EVENT_KID}'"
            ));
        }
        if secret.len() < MIN_KEY_LEN {
            return Err(format!(
                "pass key '{kid}' must be at least {MIN_KEY_LEN} bytes"
            ));
        }
        if keys.iter().any(|k| k.kid == kid) {
            return Err(format!("pass key id '{kid}' is given twice"));
        }
        keys.push(PassKey::new(kid, secret.as_bytes()));
    }
    Ok(keys)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evt_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_b64: Option<String>,
    pub tkt: u32,
    pub iat: u64,
    pub exp: u64,
}

/// Text claims hold UTF-8 as is, anything else base64url-encoded in the `_b64` twin.
fn text_claim(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Some(text.to_string()), None),
        Err(_) => (None, Some(URL_SAFE_NO_PAD.encode(bytes))),
    }
}

fn claim_is(plain: &Option<String>, b64: &Option<String>, bytes: &[u8]) -> bool {
    match (plain, b64) {
        (Some(text), None) => text.as_bytes() == bytes,
        (None, Some(enc)) => URL_SAFE_NO_PAD.decode(enc).is_ok_and(|d| d == bytes),
        _ => false,
    }
}

impl Claims {
    pub fn new(event: &[u8], user: &[u8], serial: u32, issued_ms: u64, expires_ms: u64) -> Self {
        let (evt, evt_b64) = text_claim(event);
        let (sub, sub_b64) = text_claim(user);
        Self {
            iss: ISSUER.to_string(),
            evt,
            evt_b64,
            sub,
            sub_b64,
            tkt: serial,
            iat: issued_ms / 1000,
            // Rounded down: a verifier never accepts a pass after the session's own expiry.
            exp: expires_ms / 1000,
        }
    }

    /// Issued by seatq for this event.
    pub fn event_is(&self, event: &[u8]) -> bool {
        self.iss == ISSUER && claim_is(&self.evt, &self.evt_b64, event)
    }

    pub fn user_is(&self, user: &[u8]) -> bool {
        claim_is(&self.sub, &self.sub_b64, user)
    }
}

/// Which key signs: the first configured one, else the event's own.
pub fn signer<'a>(keys: &'a [PassKey], event_key: &'a PassKey) -> &'a PassKey {
    keys.first().unwrap_or(event_key)
}

fn header_segment(kid: &str) -> String {
    let header = serde_json::json!({ "alg": "HS256", "typ": "JWT", "kid": kid });
    URL_SAFE_NO_PAD.encode(header.to_string())
}

static EVENT_HEADER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| header_segment(EVENT_KID));

/// Whether a pass seatq issued is still signed by a key it may be checked with: its `kid` is
/// the event's own or still listed. Lets a caller that already knows the token is the one it
/// issued skip the signature check, yet stop accepting a retired key's passes exactly as
/// other verifiers do. Passes from before signed tokens (no header) are accepted.
pub fn issued_with_listed_key(token: &[u8], keys: &[PassKey]) -> bool {
    let Some(dot) = token.iter().position(|&b| b == b'.') else {
        return true;
    };
    let header = &token[..dot];
    header == EVENT_HEADER.as_bytes() || keys.iter().any(|k| k.header.as_bytes() == header)
}

pub fn sign(claims: &Claims, key: &PassKey) -> String {
    let mut token = String::with_capacity(256);
    token.push_str(&key.header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(
        serde_json::to_vec(claims).expect("claims serialize"),
        &mut token,
    );
    let signature = key.mac(token.as_bytes()).finalize().into_bytes();
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

#[derive(Debug, PartialEq, Eq)]
pub enum PassError {
    /// Not a JWT, not HS256, or claims of another shape.
    Malformed,
    /// The header names a key that is not configured (rotated out, or another deployment's).
    UnknownKey,
    BadSignature,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Checks a pass's signature against the configured keys (or the event's own key) and returns
/// its claims. Expiry and revocation are the caller's to check, against the session.
pub fn verify(token: &[u8], keys: &[PassKey], event_key: &PassKey) -> Result<Claims, PassError> {
    let text = std::str::from_utf8(token).map_err(|_| PassError::Malformed)?;
    if text.len() > 4096 {
        return Err(PassError::Malformed);
    }
    let (signing_input, signature) = text.rsplit_once('.').ok_or(PassError::Malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(PassError::Malformed)?;
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(PassError::Malformed)?;
    if header.alg != "HS256" {
        return Err(PassError::Malformed);
    }
    let key = match header.kid.as_deref() {
        Some(EVENT_KID) => event_key,
        Some(kid) => keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(PassError::UnknownKey)?,
        None => return Err(PassError::UnknownKey),
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| PassError::Malformed)?;
    key.mac(signing_input.as_bytes())
        .verify_slice(&signature)
        .map_err(|_| PassError::BadSignature)?;
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(PassError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_key() -> PassKey {
        PassKey::event(&[3; 32])
    }

    fn other_event_key() -> PassKey {
        PassKey::event(&[4; 32])
    }

    fn keys() -> Vec<PassKey> {
        parse_keys("k2:0123456789abcdef0123456789abcdef k1:fedcba9876543210fedcba9876543210")
            .unwrap()
    }

    #[test]
    fn signs_and_verifies_with_rotation() {
        let claims = Claims::new(b"concert", b"alice", 7, 1_000_500, 901_000_999);
        assert_eq!((claims.iat, claims.exp), (1000, 901_000));
        let keys = keys();
        let own_key = event_key();
        let key = signer(&keys, &own_key);
        assert_eq!(key.kid, "k2");
        let token = sign(&claims, key);
        assert_eq!(
            verify(token.as_bytes(), &keys, &event_key()),
            Ok(claims.clone())
        );
        assert!(claims.event_is(b"concert") && claims.user_is(b"alice"));
        assert!(!claims.user_is(b"mallory"));
        assert!(!claims.event_is(b"other"));
        // Rotated out: k2 removed, its passes no longer verify.
        let later =
            parse_keys("k3:0123456789abcdef0123456789abcdeX k1:fedcba9876543210fedcba9876543210")
                .unwrap();
        assert_eq!(
            verify(token.as_bytes(), &later, &event_key()),
            Err(PassError::UnknownKey)
        );
        // Still listed (not signing): still verifies.
        let rotated =
            parse_keys("k3:0123456789abcdef0123456789abcdeX k2:0123456789abcdef0123456789abcdef")
                .unwrap();
        assert!(verify(token.as_bytes(), &rotated, &event_key()).is_ok());
        // The shortcut for a session's own pass follows the same list.
        assert!(issued_with_listed_key(token.as_bytes(), &rotated));
        assert!(!issued_with_listed_key(token.as_bytes(), &later));
        let own = sign(&claims, &event_key());
        assert!(issued_with_listed_key(own.as_bytes(), &[]));
        assert!(issued_with_listed_key(b"0123abcd", &[]), "a pre-JWT pass");
    }

    #[test]
    fn tampering_is_detected() {
        let claims = Claims::new(b"e", b"bob", 1, 0, 10_000);
        let token = sign(&claims, &event_key());
        assert!(verify(token.as_bytes(), &[], &event_key()).is_ok());
        assert_eq!(
            verify(token.as_bytes(), &[], &other_event_key()),
            Err(PassError::BadSignature)
        );
        let forged_claims = Claims::new(b"e", b"mallory", 1, 0, 10_000);
        let forged = sign(&forged_claims, &other_event_key());
        assert_eq!(
            verify(forged.as_bytes(), &[], &event_key()),
            Err(PassError::BadSignature)
        );
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.rsplit_once('.').unwrap();
        let swapped = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap())
        );
        assert_eq!(
            verify(swapped.as_bytes(), &[], &event_key()),
            Err(PassError::BadSignature)
        );
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"event"}"#),
            rest.split('.').next().unwrap()
        );
        assert_eq!(
            verify(none_alg.as_bytes(), &[], &event_key()),
            Err(PassError::Malformed)
        );
        for junk in [&b""[..], b"a.b", b"a.b.c", b"\xff.\xff.\xff"] {
            assert!(verify(junk, &[], &event_key()).is_err());
        }
    }

    #[test]
    fn binary_ids_round_trip() {
        let claims = Claims::new(b"\xffev", b"u\x00\xfe", 3, 0, 5000);
        assert!(claims.sub.is_none() && claims.sub_b64.is_some());
        let token = sign(&claims, &event_key());
        let back = verify(token.as_bytes(), &[], &event_key()).unwrap();
        assert!(back.event_is(b"\xffev") && back.user_is(b"u\x00\xfe"));
    }

    #[test]
    fn key_config_is_validated() {
        assert!(parse_keys("").unwrap().is_empty());
        assert!(parse_keys("short:abc").is_err());
        assert!(parse_keys("nocolon").is_err());
        assert!(parse_keys("event:0123456789abcdef0123456789abcdef").is_err());
        assert!(parse_keys(
            "a:0123456789abcdef0123456789abcdef a:0123456789abcdef0123456789abcdef"
        )
        .is_err());
    }
}
