//! Browser sessions and display tokens: what the pages served by switchyard (`/wallboard`,
//! `/agent`) sign in with.
//!
//! A display token is a read-only credential of one tenant for wall screens: `syd_` + 64
//! lowercase hex characters (32 bytes from the OS), stored as its first 12 hex characters
//! (to find the row) and the SHA-256 of the whole token, like an API key. It always expires.
//!
//! A session token is what the browser keeps in its HttpOnly cookie: [`PERSON_SESSION_TAG`]
//! (made from an API key) or [`DISPLAY_SESSION_TAG`] (made from a display token) + 64 hex
//! characters. The row keeps only its SHA-256, looked up directly (a hash of 256 random bits
//! is as good an index as any). The tag is covered by the hash, so it cannot be changed
//! without the token failing: the HTTP layer may trust it to tell a display session apart.
//! Every check joins the credential the session was made from, so revoking or expiring that
//! credential (or disabling the tenant) ends its sessions at once, on every server.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::keys::{hash_matches, key_hash};
use super::rows::{FromStoreRow, RowExt, TextIdRow, parse_role};
use super::{AuditEntry, AuditWrite, KeyCheck, Store, StoreError, Use, args, check_name, now_ms};
use crate::model::{Principal, Role, TenantId};

/// What every display token starts with.
pub const DISPLAY_TAG: &str = "syd_";
/// A session made from an API key (a person).
pub const PERSON_SESSION_TAG: &str = "sys_";
/// A session made from a display token (a wall screen: read-only).
pub const DISPLAY_SESSION_TAG: &str = "syw_";
const TOKEN_BYTES: usize = 32;
const PREFIX_HEX: usize = 12;
/// Display tokens live at most this long (a year and a day): a screen on a wall for longer
/// gets a new one, so a forgotten token does not work forever.
pub const MAX_DISPLAY_LIFETIME_MS: i64 = 366 * 24 * 3600 * 1000;
/// How many fresh tokens to try when a 48-bit prefix collides (practically never).
const PREFIX_ATTEMPTS: usize = 3;

/// `tag` + 64 lowercase hex characters, or None (no database lookup for anything else).
fn well_formed<'a>(tag: &str, token: &'a str) -> Option<&'a str> {
    let body = token.strip_prefix(tag)?;
    (body.len() == 2 * TOKEN_BYTES
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(body)
}

fn random_token(tag: &str) -> Result<String, StoreError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(format!("{tag}{}", hex::encode(bytes)))
}

fn hash_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The earlier of two optional expiries (None: never).
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A display token as listed: never the token, never its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayToken {
    pub id: Uuid,
    pub tenant: TenantId,
    pub name: String,
    /// The 12 hex characters after `syd_`, to recognise a token in a list.
    pub prefix: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

impl FromStoreRow for DisplayToken {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(DisplayToken {
            id: row.uuid("id")?,
            tenant: row.tenant("tenant_id")?,
            name: row.string("name")?,
            prefix: row.string("prefix")?,
            created_at_ms: row.i64("created_at")?,
            expires_at_ms: row.i64("expires_at")?,
            revoked_at_ms: row.opt_i64("revoked_at")?,
            last_used_at_ms: row.opt_i64("last_used_at")?,
        })
    }
}

const LIST_DISPLAY_TOKENS: &str = "SELECT id, tenant_id, name, prefix, created_at, expires_at, \
     revoked_at, last_used_at FROM display_tokens WHERE tenant_id = $1 ORDER BY created_at, id";

/// What a display-token check needs (the hash never leaves this module).
struct DisplayAuthRow {
    id: Uuid,
    tenant: TenantId,
    hash: String,
    expires_at_ms: i64,
    revoked: bool,
    tenant_disabled: bool,
}

impl FromStoreRow for DisplayAuthRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(DisplayAuthRow {
            id: row.uuid("id")?,
            tenant: row.tenant("tenant_id")?,
            hash: row.string("hash")?,
            expires_at_ms: row.i64("expires_at")?,
            revoked: row.opt_i64("revoked_at")?.is_some(),
            tenant_disabled: row.opt_bool("tenant_disabled")?.unwrap_or(false),
        })
    }
}

/// What a session was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionSource {
    /// An API key (its id): a person's session, with the key's role and agent.
    Key(Uuid),
    /// A display token (its id): a wall screen's read-only session.
    Display(Uuid),
}

/// A session just made: the token exists only here and in the browser's cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    pub id: Uuid,
    pub token: String,
    pub expires_at_ms: i64,
}

/// A session with the credential it hangs on, as one check reads it.
struct SessionAuthRow {
    tenant: TenantId,
    expires_at_ms: i64,
    revoked: bool,
    key_id: Option<Uuid>,
    display_id: Option<Uuid>,
    key_role: Option<String>,
    key_agent: Option<i64>,
    /// The credential's own expiry and revocation (key or display token, whichever it is).
    source_expires_ms: Option<i64>,
    source_revoked: bool,
    tenant_disabled: bool,
}

impl FromStoreRow for SessionAuthRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        let key_id = row.opt_uuid("key_id")?;
        let (source_expires_ms, source_revoked) = if key_id.is_some() {
            (
                row.opt_i64("key_expires")?,
                row.opt_i64("key_revoked")?.is_some(),
            )
        } else {
            (
                row.opt_i64("display_expires")?,
                row.opt_i64("display_revoked")?.is_some(),
            )
        };
        Ok(SessionAuthRow {
            tenant: row.tenant("tenant_id")?,
            expires_at_ms: row.i64("expires_at")?,
            revoked: row.opt_i64("revoked_at")?.is_some(),
            key_id,
            display_id: row.opt_uuid("display_token_id")?,
            key_role: row.opt_string("key_role")?,
            key_agent: row.opt_i64("key_agent")?,
            source_expires_ms,
            source_revoked,
            tenant_disabled: row.opt_bool("tenant_disabled")?.unwrap_or(false),
        })
    }
}

impl Store {
    /// A new display token of `tenant`, expiring at `expires_at_ms` (in the future, at most
    /// [`MAX_DISPLAY_LIFETIME_MS`] away: `Invalid { field: "expires_at" }` otherwise). Returns
    /// the listing form and the token itself, which exists nowhere else: show it once.
    pub async fn create_display_token(
        &self,
        tenant: TenantId,
        name: &str,
        expires_at_ms: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<(DisplayToken, String), StoreError> {
        check_name("name", name)?;
        let created_at_ms = now_ms();
        if expires_at_ms <= created_at_ms {
            return Err(StoreError::invalid("expires_at", "must be in the future"));
        }
        if expires_at_ms - created_at_ms > MAX_DISPLAY_LIFETIME_MS {
            return Err(StoreError::invalid(
                "expires_at",
                "a display token lives at most 366 days",
            ));
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let token = random_token(DISPLAY_TAG)?;
            let prefix = well_formed(DISPLAY_TAG, &token)
                .and_then(|b| b.get(..PREFIX_HEX))
                .ok_or_else(|| StoreError::Internal("generated a malformed token".into()))?
                .to_owned();
            let id = Uuid::now_v7();
            let inserted: Result<Option<TextIdRow>, StoreError> = self
                .change(
                    "display token prefix",
                    "INSERT INTO display_tokens \
                     (id, tenant_id, name, prefix, hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    args![
                        id,
                        tenant,
                        name,
                        prefix.as_str(),
                        hash_hex(&token),
                        created_at_ms,
                        expires_at_ms
                    ],
                    AuditWrite {
                        entry: audit,
                        tenant: Some(tenant),
                    },
                    |row: &TextIdRow| row.0.clone(),
                )
                .await;
            match inserted {
                Ok(Some(_)) => {
                    let listed = DisplayToken {
                        id,
                        tenant,
                        name: name.to_owned(),
                        prefix,
                        created_at_ms,
                        expires_at_ms,
                        revoked_at_ms: None,
                        last_used_at_ms: None,
                    };
                    return Ok((listed, token));
                }
                Ok(None) => {
                    return Err(StoreError::Internal(
                        "INSERT ... RETURNING returned no row".into(),
                    ));
                }
                // The only unique columns are the random prefix and the random id: draw again.
                Err(StoreError::Conflict { .. }) if attempts < PREFIX_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The display tokens of `tenant`, oldest first, revoked and expired ones included.
    pub async fn list_display_tokens(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<DisplayToken>, StoreError> {
        self.fetch_all(Use::Read, LIST_DISPLAY_TOKENS, args![tenant])
            .await
    }

    /// Revokes a display token of `tenant` (and so every session made from it). True if it
    /// exists there (revoking twice keeps the first time, and is audited again).
    pub async fn revoke_display_token(
        &self,
        tenant: TenantId,
        id: Uuid,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let changed: Option<TextIdRow> = self
            .change(
                "display token",
                "UPDATE display_tokens SET revoked_at = COALESCE(revoked_at, $2) \
                 WHERE id = $1 AND tenant_id = $3 RETURNING id",
                args![id, now_ms(), tenant],
                AuditWrite {
                    entry: audit,
                    tenant: Some(tenant),
                },
                |row: &TextIdRow| row.0.clone(),
            )
            .await?;
        Ok(changed.is_some())
    }

    /// Who a presented display token is: a read-only principal of its tenant whose `key_id`
    /// is the token's id. `Invalid` when malformed (no lookup), unknown, wrong, revoked or
    /// expired at `now_ms`.
    pub async fn check_display_token(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<KeyCheck, StoreError> {
        let Some(prefix) = well_formed(DISPLAY_TAG, token).and_then(|b| b.get(..PREFIX_HEX)) else {
            return Ok(KeyCheck::Invalid);
        };
        let row: Option<DisplayAuthRow> = self
            .fetch_optional(
                Use::Read,
                "SELECT d.id, d.tenant_id, d.hash, d.expires_at, d.revoked_at, \
                        t.disabled AS tenant_disabled \
                 FROM display_tokens d JOIN tenants t ON t.id = d.tenant_id \
                 WHERE d.prefix = $1",
                args![prefix],
            )
            .await?;
        let Some(row) = row else {
            return Ok(KeyCheck::Invalid);
        };
        if !hash_matches(&key_hash(token), &row.hash) || row.revoked || row.expires_at_ms <= now_ms
        {
            return Ok(KeyCheck::Invalid);
        }
        if row.tenant_disabled {
            return Ok(KeyCheck::TenantDisabled(row.tenant));
        }
        // Best effort, at most once a minute: the list shows whether a screen still uses it.
        let _ = self
            .execute(
                "UPDATE display_tokens SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
                args![row.id, now_ms, now_ms.saturating_sub(60_000)],
            )
            .await;
        Ok(KeyCheck::Valid {
            principal: display_principal(row.id, row.tenant),
            expires_at_ms: Some(row.expires_at_ms),
        })
    }

    /// A new session for `principal` (already verified by the caller) made from `source`,
    /// ending at `expires_at_ms` at the latest (and with its credential, whichever is first).
    /// Sessions ended more than a day ago are deleted on the way, so the table holds what is
    /// current. Platform-admin principals have no tenant: `Invalid { field: "key" }`.
    pub async fn create_web_session(
        &self,
        principal: &Principal,
        source: SessionSource,
        expires_at_ms: i64,
    ) -> Result<NewSession, StoreError> {
        let Some(tenant) = principal.tenant else {
            return Err(StoreError::invalid(
                "key",
                "a platform-admin key has no tenant to show pages of",
            ));
        };
        let now = now_ms();
        self.execute(
            "DELETE FROM web_sessions WHERE expires_at < $1",
            args![now.saturating_sub(24 * 3600 * 1000)],
        )
        .await?;
        let (tag, key_id, display_id) = match source {
            SessionSource::Key(k) => (PERSON_SESSION_TAG, Some(k), None),
            SessionSource::Display(d) => (DISPLAY_SESSION_TAG, None, Some(d)),
        };
        let token = random_token(tag)?;
        let id = Uuid::now_v7();
        self.execute(
            "INSERT INTO web_sessions (id, token_hash, tenant_id, key_id, display_token_id, \
                                       role, agent_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            args![
                id,
                hash_hex(&token),
                tenant,
                key_id,
                display_id,
                principal.role.as_str(),
                principal.agent_id,
                now,
                expires_at_ms
            ],
        )
        .await?;
        Ok(NewSession {
            id,
            token,
            expires_at_ms,
        })
    }

    /// Who a session token is, checked with the credential it was made from: `Valid` with
    /// the earlier of the session's and the credential's expiry; `Invalid` when malformed (no
    /// lookup), unknown, ended, expired, or its key or display token revoked or expired;
    /// `TenantDisabled` for a current session of a disabled tenant.
    pub async fn check_web_session(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<KeyCheck, StoreError> {
        let display = if well_formed(PERSON_SESSION_TAG, token).is_some() {
            false
        } else if well_formed(DISPLAY_SESSION_TAG, token).is_some() {
            true
        } else {
            return Ok(KeyCheck::Invalid);
        };
        let row: Option<SessionAuthRow> = self
            .fetch_optional(
                Use::Read,
                "SELECT s.tenant_id, s.expires_at, s.revoked_at, s.key_id, s.display_token_id, \
                        k.role AS key_role, k.agent_id AS key_agent, \
                        k.expires_at AS key_expires, k.revoked_at AS key_revoked, \
                        d.expires_at AS display_expires, d.revoked_at AS display_revoked, \
                        t.disabled AS tenant_disabled \
                 FROM web_sessions s \
                 JOIN tenants t ON t.id = s.tenant_id \
                 LEFT JOIN api_keys k ON k.id = s.key_id \
                 LEFT JOIN display_tokens d ON d.id = s.display_token_id \
                 WHERE s.token_hash = $1",
                args![hash_hex(token)],
            )
            .await?;
        let Some(row) = row else {
            return Ok(KeyCheck::Invalid);
        };
        let expires = earliest(Some(row.expires_at_ms), row.source_expires_ms);
        if row.revoked || row.source_revoked || expires.is_some_and(|at| at <= now_ms) {
            return Ok(KeyCheck::Invalid);
        }
        let principal = match (display, row.key_id, row.display_id, row.key_role) {
            (false, Some(key), None, Some(role)) => Principal {
                key_id: key,
                tenant: Some(row.tenant),
                role: parse_role(&role)?,
                agent_id: row.key_agent,
            },
            (true, None, Some(d), _) => display_principal(d, row.tenant),
            // A tag that does not match the row cannot come from this store: refused.
            _ => return Ok(KeyCheck::Invalid),
        };
        if principal.role == Role::PlatformAdmin {
            return Ok(KeyCheck::Invalid);
        }
        if row.tenant_disabled {
            return Ok(KeyCheck::TenantDisabled(row.tenant));
        }
        Ok(KeyCheck::Valid {
            principal,
            expires_at_ms: expires,
        })
    }

    /// Ends a session (sign-out). True if the token named one.
    pub async fn end_web_session(&self, token: &str) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE web_sessions SET revoked_at = COALESCE(revoked_at, $2) \
                 WHERE token_hash = $1",
                args![hash_hex(token), now_ms()],
            )
            .await?;
        Ok(n > 0)
    }
}

/// The principal of a display token or of a session made from one: read-only, its tenant's,
/// its `key_id` the token's id (so revoking the token drops its cached verifications, and its
/// screens share one rate-limit bucket).
pub fn display_principal(id: Uuid, tenant: TenantId) -> Principal {
    Principal {
        key_id: id,
        tenant: Some(tenant),
        role: Role::ReadOnly,
        agent_id: None,
    }
}

/// True for a well-formed session token made from a display token.
pub fn is_display_session(token: &str) -> bool {
    well_formed(DISPLAY_SESSION_TAG, token).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_only_with_their_own_tag_and_64_hex() {
        let t = random_token(DISPLAY_SESSION_TAG).unwrap();
        assert!(is_display_session(&t));
        assert!(well_formed(PERSON_SESSION_TAG, &t).is_none());
        let p = random_token(PERSON_SESSION_TAG).unwrap();
        assert!(!is_display_session(&p));
        for bad in [
            String::new(),
            DISPLAY_SESSION_TAG.to_owned(),
            format!("{DISPLAY_SESSION_TAG}{}", "a".repeat(63)),
            format!("{DISPLAY_SESSION_TAG}{}", "A".repeat(64)),
            format!("{DISPLAY_SESSION_TAG}{}é", "a".repeat(62)),
        ] {
            assert!(!is_display_session(&bad), "{bad:?}");
        }
        assert_ne!(
            random_token(DISPLAY_TAG).unwrap(),
            random_token(DISPLAY_TAG).unwrap()
        );
    }

    #[test]
    fn the_earliest_expiry_wins_and_none_means_never() {
        assert_eq!(earliest(Some(5), Some(3)), Some(3));
        assert_eq!(earliest(None, Some(3)), Some(3));
        assert_eq!(earliest(Some(5), None), Some(5));
        assert_eq!(earliest(None, None), None);
    }
}
