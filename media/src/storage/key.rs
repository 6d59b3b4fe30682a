//! Object keys: `<prefix>/<tenant>/<recording id>.wav`, checked part by part so that no tenant
//! or id taken from a request can climb out of its directory (`..`), add a level (`/`), or make
//! a key that S3 and a file system would read differently.

use std::fmt;

use crate::MediaError;

/// The key of one recording in the store. Built only by [`ObjectKey::new`], so every key is
/// valid on both backends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// The longest tenant or recording id.
    pub const MAX_PART_BYTES: usize = 128;
    /// The longest prefix (all its segments and slashes).
    pub const MAX_PREFIX_BYTES: usize = 256;

    /// `prefix` is zero or more `/`-separated segments (`""`, `"recordings"`,
    /// `"recordings/2026"`); `tenant` and `recording_id` are one segment each. A segment is
    /// ASCII letters, digits, `-`, `_` and `.`, does not start with `.` (no `..`, no hidden
    /// files) and is at most [`Self::MAX_PART_BYTES`] long.
    pub fn new(prefix: &str, tenant: &str, recording_id: &str) -> Result<Self, MediaError> {
        if prefix.len() > Self::MAX_PREFIX_BYTES {
            return Err(MediaError::ObjectKey {
                part: "prefix",
                reason: "longer than 256 bytes",
            });
        }
        if !prefix.is_empty() {
            for segment in prefix.split('/') {
                check_segment("prefix", segment)?;
            }
        }
        check_segment("tenant", tenant)?;
        check_segment("recording id", recording_id)?;
        let key = if prefix.is_empty() {
            format!("{tenant}/{recording_id}.wav")
        } else {
            format!("{prefix}/{tenant}/{recording_id}.wav")
        };
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks one `/`-free segment of a key or prefix.
pub(super) fn check_segment(part: &'static str, segment: &str) -> Result<(), MediaError> {
    let reason = if segment.is_empty() {
        "empty"
    } else if segment.len() > ObjectKey::MAX_PART_BYTES {
        "longer than 128 bytes"
    } else if segment.starts_with('.') {
        "starts with a dot"
    } else if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        "holds a character other than ASCII letters, digits, '-', '_' and '.'"
    } else {
        return Ok(());
    };
    Err(MediaError::ObjectKey { part, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(prefix: &str, tenant: &str, id: &str) -> (&'static str, &'static str) {
        match ObjectKey::new(prefix, tenant, id) {
            Err(MediaError::ObjectKey { part, reason }) => (part, reason),
            other => panic!("{prefix:?} {tenant:?} {id:?}: expected a key error, got {other:?}"),
        }
    }

    #[test]
    fn joins_prefix_tenant_and_id_with_the_extension() {
        let key = ObjectKey::new("recordings/2026", "acme", "0190a1b2-7e5f").unwrap();
        assert_eq!(key.as_str(), "recordings/2026/acme/0190a1b2-7e5f.wav");
        assert_eq!(
            ObjectKey::new("", "acme", "r1").unwrap().as_str(),
            "acme/r1.wav"
        );
    }

    #[test]
    fn refuses_parts_that_leave_their_directory() {
        assert_eq!(refused("recordings", "..", "r1").0, "tenant");
        assert_eq!(refused("recordings", "acme", "..").0, "recording id");
        assert_eq!(refused("recordings", "a/b", "r1").0, "tenant");
        assert_eq!(
            refused("recordings", "acme", "x/../../etc").0,
            "recording id"
        );
        assert_eq!(refused("../etc", "acme", "r1").0, "prefix");
        assert_eq!(refused("recordings/", "acme", "r1"), ("prefix", "empty"));
        assert_eq!(refused("/abs", "acme", "r1"), ("prefix", "empty"));
        assert_eq!(
            refused("recordings", ".hidden", "r1").1,
            "starts with a dot"
        );
    }

    #[test]
    fn refuses_empty_long_and_odd_parts() {
        assert_eq!(refused("p", "", "r1"), ("tenant", "empty"));
        assert_eq!(refused("p", "acme", &"r".repeat(129)).0, "recording id");
        assert!(ObjectKey::new("p", "acme", &"r".repeat(128)).is_ok());
        assert_eq!(refused(&"p".repeat(257), "acme", "r1").0, "prefix");
        assert_eq!(refused("p", "ac me", "r1").0, "tenant");
        assert_eq!(refused("p", "acme", "r1\0").0, "recording id");
        assert_eq!(refused("p", "acmé", "r1").0, "tenant");
        assert_eq!(refused("p", "acme", "r1%2f").0, "recording id");
    }
}
