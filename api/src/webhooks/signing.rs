//! Webhook signatures as the Standard Webhooks specification defines them
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>).
//!
//! Every delivery carries three headers:
//!
//! ```text
//! webhook-id: msg_0192f5d0c3a87b31a2e4c4b1f0e9d8c7      (the same on every retry)
//! webhook-timestamp: 1765094400                          (unix seconds, when this attempt was signed)
//! webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")> [v1,<...> ...]
//! ```
//!
//! The key is the secret's bytes; the secret is shown to the endpoint's owner as
//! `whsec_<base64 of the key>`. While a secret is being rotated the message is signed with the
//! new and the old one, their signatures separated by a space in the one header, so a receiver
//! holding either verifies it ([`sign_headers`] with several secrets).
//!
//! Pure: no clock (the timestamp is an argument) and no I/O; randomness only in
//! [`Secret::generate`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use uuid::Uuid;

type HmacSha256 = hmac::Hmac<sha2_11::Sha256>;

/// Header names (lower case, as the specification writes them; HTTP header names are
/// case-insensitive).
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// What a secret shown to people starts with (the specification's convention, and what its
/// libraries strip before decoding).
pub const SECRET_PREFIX: &str = "whsec_";

/// Key length bounds: the specification asks for 24 to 64 bytes (192 to 512 bits). A shorter key
/// is refused rather than padded; a longer one gains nothing (HMAC-SHA256 hashes keys longer
/// than its 64-byte block down to 32 bytes anyway).
pub const MIN_KEY_BYTES: usize = 24;
pub const MAX_KEY_BYTES: usize = 64;
/// What [`Secret::generate`] makes: the SHA-256 output size, the most that adds strength.
pub const GENERATED_KEY_BYTES: usize = 32;

/// At most this many secrets sign one message. Rotation needs two (new and old); the bound
/// keeps the header short (each signature adds 48 bytes) whatever a caller passes.
pub const MAX_SIGNATURES: usize = 4;

/// What can go wrong making secrets, ids and signatures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    #[error("a webhook secret starts with `{SECRET_PREFIX}`")]
    SecretPrefix,
    #[error("a webhook secret is `{SECRET_PREFIX}` and standard base64 (`+/`, `=` padding)")]
    SecretBase64,
    #[error("a webhook secret holds {min} to {max} bytes, this one {len}", min = MIN_KEY_BYTES, max = MAX_KEY_BYTES)]
    SecretLength { len: usize },
    #[error("no randomness from the OS: {0}")]
    Random(String),
    #[error("a message id is 1 to {max} characters of `A-Z a-z 0-9 _ -`", max = MAX_ID_LEN)]
    MessageId,
    #[error("a message is signed with 1 to {max} secrets, not {given}", max = MAX_SIGNATURES)]
    SecretCount { given: usize },
}

/// A signing secret. Its key never appears in `Debug` output or logs; [`Secret::expose`] is the
/// one way to see it (to show it once to its owner, or to store it). No `PartialEq`: comparing
/// keys with `==` is not constant-time, and nothing needs to.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl Secret {
    /// Parses `whsec_<base64>`. Surrounding whitespace is tolerated (pasted secrets often carry a
    /// newline); anything else that is not the canonical form is refused.
    pub fn parse(text: &str) -> Result<Secret, SigningError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SigningError::SecretPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SigningError::SecretBase64)?;
        Secret::from_key(key)
    }

    /// A secret with these key bytes (24 to 64 of them).
    pub fn from_key(key: Vec<u8>) -> Result<Secret, SigningError> {
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SigningError::SecretLength { len: key.len() });
        }
        Ok(Secret { key })
    }

    /// A new random secret of [`GENERATED_KEY_BYTES`] bytes from the OS.
    pub fn generate() -> Result<Secret, SigningError> {
        let mut key = vec![0u8; GENERATED_KEY_BYTES];
        getrandom::fill(&mut key).map_err(|e| SigningError::Random(e.to_string()))?;
        Ok(Secret { key })
    }

    /// The secret as its owner sees it: `whsec_<base64>`. Named so that every place that
    /// reveals the key reads as such.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp_secs}.{body}">`: one signature, as it goes
    /// in `webhook-signature`.
    pub fn sign(&self, msg_id: &MessageId, timestamp_secs: i64, body: &[u8]) -> String {
        // HMAC is defined for keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(msg_id.as_str().as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Longest message id accepted by [`MessageId::parse`].
pub const MAX_ID_LEN: usize = 64;

/// A message's `webhook-id`: the receiver's idempotency key, so the same on every attempt and
/// on a manual resend of that message.
///
/// Made from the message's own uuid (the outbox row's, fixed when the event is recorded) as
/// `msg_` and the uuid's 32 lower-case hex digits, so the id can be recomputed from the row at
/// any attempt instead of being stored beside it. A uuid v7 keeps ids roughly time-ordered, which
/// is what Svix's `msg_<KSUID>` gives too.
///
/// Ids hold `A-Z a-z 0-9 _ -` only. The signed content is `{id}.{timestamp}.{body}`; with a `.`
/// allowed in ids, two different messages could sign the same bytes (id `a.1` at time 2 with
/// body `x`, and id `a` at time 1 with body `2.x`, both sign `a.1.2.x`), so it is kept out; the
/// characters left are also safe in any header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// The id of the message recorded with this uuid.
    pub fn from_uuid(id: Uuid) -> MessageId {
        MessageId(format!("msg_{}", id.simple()))
    }

    /// An id given as text (one received from elsewhere, or a test vector).
    pub fn parse(text: &str) -> Result<MessageId, SigningError> {
        let ok = !text.is_empty()
            && text.len() <= MAX_ID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(MessageId(text.to_owned()))
        } else {
            Err(SigningError::MessageId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The three Standard Webhooks headers of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: MessageId,
    pub timestamp_secs: i64,
    /// One `v1,<base64>` per secret, space-separated.
    pub signature: String,
}

impl SignedHeaders {
    /// Name and value pairs, ready for a request builder.
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        [
            (HEADER_ID, self.id.as_str().to_owned()),
            (HEADER_TIMESTAMP, self.timestamp_secs.to_string()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }
}

/// Signs one attempt of a message with every secret in `secrets` (the current one first, then
/// any still in their rotation overlap). `timestamp_secs` is when the attempt is made, in unix
/// seconds: receivers refuse stale timestamps (five minutes is usual), so each retry is signed
/// afresh with its own time and the same id.
pub fn sign_headers(
    msg_id: &MessageId,
    timestamp_secs: i64,
    body: &[u8],
    secrets: &[Secret],
) -> Result<SignedHeaders, SigningError> {
    if secrets.is_empty() || secrets.len() > MAX_SIGNATURES {
        return Err(SigningError::SecretCount {
            given: secrets.len(),
        });
    }
    let signature = secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp_secs, body))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(SignedHeaders {
        id: msg_id.clone(),
        timestamp_secs,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Svix's published example (recomputed independently with Python's hmac module).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1614265330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specifications_test_vector() {
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        let id = MessageId::parse(VECTOR_ID).unwrap();
        assert_eq!(secret.sign(&id, VECTOR_TS, VECTOR_BODY), VECTOR_SIG);
    }

    #[test]
    fn secret_round_trips_through_its_shown_form() {
        let secret = Secret::generate().unwrap();
        assert_eq!(Secret::parse(&secret.expose()).unwrap().key, secret.key);
        assert_eq!(secret.key.len(), GENERATED_KEY_BYTES);
        assert!(secret.expose().starts_with("whsec_"));
    }

    #[test]
    fn generated_secrets_differ() {
        assert_ne!(
            Secret::generate().unwrap().key,
            Secret::generate().unwrap().key
        );
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(
            !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{shown}"
        );
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn malformed_secrets_are_refused_with_the_reason() {
        let cases: &[(&str, SigningError)] = &[
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SigningError::SecretPrefix,
            ),
            (
                "whsec:MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SigningError::SecretPrefix,
            ),
            ("", SigningError::SecretPrefix),
            ("whsec_not base64!", SigningError::SecretBase64),
            // URL-safe alphabet: not what the specification's libraries decode.
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa_-",
                SigningError::SecretBase64,
            ),
            ("whsec_", SigningError::SecretLength { len: 0 }),
            // 16 bytes: too short.
            (
                "whsec_AAAAAAAAAAAAAAAAAAAAAA==",
                SigningError::SecretLength { len: 16 },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Secret::parse(text).err().as_ref(), Some(want), "{text:?}");
        }
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(
            Secret::parse(&long).err(),
            Some(SigningError::SecretLength { len: 65 })
        );
    }

    #[test]
    fn pasted_secret_with_surrounding_whitespace_is_accepted() {
        let padded = format!("  {VECTOR_SECRET}\n");
        assert_eq!(
            Secret::parse(&padded).unwrap().key,
            Secret::parse(VECTOR_SECRET).unwrap().key
        );
    }

    #[test]
    fn message_id_is_stable_for_one_uuid_and_distinct_across_uuids() {
        let a = Uuid::parse_str("0192f5d0-c3a8-7b31-a2e4-c4b1f0e9d8c7").unwrap();
        let b = Uuid::parse_str("0192f5d0-c3a8-7b31-a2e4-c4b1f0e9d8c8").unwrap();
        assert_eq!(
            MessageId::from_uuid(a).as_str(),
            "msg_0192f5d0c3a87b31a2e4c4b1f0e9d8c7"
        );
        assert_eq!(MessageId::from_uuid(a), MessageId::from_uuid(a));
        assert_ne!(MessageId::from_uuid(a), MessageId::from_uuid(b));
        // What from_uuid makes, parse takes back.
        let id = MessageId::from_uuid(a);
        assert_eq!(MessageId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn message_ids_that_could_blur_the_signed_content_are_refused() {
        for bad in [
            "",
            "a.1",
            "msg 1",
            "msg,1",
            "msg\n",
            "é",
            &"a".repeat(MAX_ID_LEN + 1),
        ] {
            assert_eq!(
                MessageId::parse(bad),
                Err(SigningError::MessageId),
                "{bad:?}"
            );
        }
        assert!(MessageId::parse(&"a".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn rotation_puts_one_signature_per_secret_in_one_header() {
        let new = Secret::generate().unwrap();
        let old = Secret::parse(VECTOR_SECRET).unwrap();
        let id = MessageId::parse(VECTOR_ID).unwrap();
        let h = sign_headers(&id, VECTOR_TS, VECTOR_BODY, &[new.clone(), old]).unwrap();
        let sigs: Vec<&str> = h.signature.split(' ').collect();
        assert_eq!(sigs.len(), 2);
        assert_eq!(sigs[0], new.sign(&id, VECTOR_TS, VECTOR_BODY));
        assert_eq!(sigs[1], VECTOR_SIG);
        let pairs = h.pairs();
        assert_eq!(pairs[0], (HEADER_ID, VECTOR_ID.to_owned()));
        assert_eq!(pairs[1], (HEADER_TIMESTAMP, VECTOR_TS.to_string()));
        assert_eq!(pairs[2], (HEADER_SIGNATURE, h.signature.clone()));
    }

    #[test]
    fn signing_needs_one_to_max_secrets() {
        let id = MessageId::parse(VECTOR_ID).unwrap();
        assert_eq!(
            sign_headers(&id, 0, b"", &[]),
            Err(SigningError::SecretCount { given: 0 })
        );
        let many = vec![Secret::parse(VECTOR_SECRET).unwrap(); MAX_SIGNATURES + 1];
        assert_eq!(
            sign_headers(&id, 0, b"", &many),
            Err(SigningError::SecretCount {
                given: MAX_SIGNATURES + 1
            })
        );
        assert!(sign_headers(&id, 0, b"", &many[..MAX_SIGNATURES]).is_ok());
    }

    #[test]
    fn body_bytes_are_signed_as_they_are() {
        // A body that is not UTF-8 still signs (the HMAC is over bytes); and one changed byte
        // changes the signature.
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        let id = MessageId::parse(VECTOR_ID).unwrap();
        let a = secret.sign(&id, VECTOR_TS, &[0xff, 0x00, 0x80]);
        let b = secret.sign(&id, VECTOR_TS, &[0xff, 0x00, 0x81]);
        assert_ne!(a, b);
        assert_ne!(
            secret.sign(&id, VECTOR_TS, VECTOR_BODY),
            secret.sign(&id, VECTOR_TS + 1, VECTOR_BODY)
        );
    }
}
