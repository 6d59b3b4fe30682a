//! API keys: random, shown once, stored as a prefix (to find the row) and a hash.
//!
//! A key is `sy_` + 64 lowercase hex characters (32 bytes from the OS): the first 12 hex
//! characters are the stored, non-secret prefix, the other 52 (208 bits) the secret. The
//! stored hash is SHA-256 of the whole key. A fast hash is right here: slow password hashes
//! (argon2...) exist to make guessing low-entropy passwords expensive, and a 256-bit random
//! key cannot be guessed however fast the hash is.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::rows::{FromStoreRow, RowExt, TextIdRow, key_cols, parse_role};
use super::{ApiKey, AuditEntry, AuditWrite, Store, StoreError, Use, args, check_name, now_ms};
use crate::model::{Principal, Role, TenantId};

/// What every key starts with (so leaked keys are recognisable, e.g. by secret scanners).
pub const KEY_TAG: &str = "sy_";
const KEY_BYTES: usize = 32;
const PREFIX_HEX: usize = 12;
const KEY_LEN: usize = KEY_TAG.len() + 2 * KEY_BYTES;

/// `last_used_at` moves only when it is at least this old: one write per key per minute at
/// most, instead of one per request on SQLite's single writer.
pub const TOUCH_GRANULARITY_MS: i64 = 60_000;

/// How many fresh keys to try when the 48-bit prefix collides with an existing one (which
/// practically never happens).
const PREFIX_ATTEMPTS: usize = 3;

/// A well-formed key's prefix, or None (no database lookup for anything else).
fn key_prefix(key: &str) -> Option<&str> {
    let body = key.strip_prefix(KEY_TAG)?;
    let well_formed = key.len() == KEY_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    // `get` rather than slicing: the checks above make it ASCII, but this cannot panic anyway.
    well_formed.then(|| body.get(..PREFIX_HEX)).flatten()
}

pub(super) fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Constant-time equality of a presented key's hash and a stored hex hash: the time taken does
/// not depend on where they differ. A stored hash that is not 64 hex characters never matches.
pub(super) fn hash_matches(presented: &[u8; 32], stored_hex: &str) -> bool {
    let mut stored = [0u8; 32];
    if hex::decode_to_slice(stored_hex, &mut stored).is_err() {
        return false;
    }
    presented
        .iter()
        .zip(stored.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// A fresh key and its stored prefix and hash.
fn generate_key() -> Result<(String, String, String), StoreError> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Internal(format!("no randomness from the OS: {e}")))?;
    let key = format!("{KEY_TAG}{}", hex::encode(bytes));
    let prefix = key_prefix(&key)
        .ok_or_else(|| StoreError::Internal("generated a malformed key".into()))?
        .to_owned();
    let hash = hex::encode(key_hash(&key));
    Ok((key, prefix, hash))
}

/// What `authenticate` needs of a key row (hash included, so it never leaves this module).
struct KeyAuthRow {
    id: Uuid,
    tenant: Option<TenantId>,
    role: Role,
    agent_id: Option<i64>,
    hash: String,
    expires_at_ms: Option<i64>,
    revoked: bool,
    tenant_disabled: bool,
}

impl FromStoreRow for KeyAuthRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(KeyAuthRow {
            id: row.uuid("id")?,
            tenant: row.opt_tenant("tenant_id")?,
            role: parse_role(&row.string("role")?)?,
            agent_id: row.opt_i64("agent_id")?,
            hash: row.string("hash")?,
            expires_at_ms: row.opt_i64("expires_at")?,
            revoked: row.opt_i64("revoked_at")?.is_some(),
            // NULL for platform keys (no tenant row joined)
            tenant_disabled: row.opt_bool("tenant_disabled")?.unwrap_or(false),
        })
    }
}

/// What the store says of a presented key ([`Store::check_api_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// A current key, and when it expires (Unix ms; None: never), so that whoever caches the
    /// answer does not keep it past then.
    Valid {
        principal: Principal,
        expires_at_ms: Option<i64>,
    },
    /// Malformed, unknown, wrong, revoked or expired.
    Invalid,
    /// The right key of a disabled tenant: told apart so the caller can say why it is refused.
    TenantDisabled(TenantId),
}

impl Store {
    /// A new key. Returns the listing form and the key itself, which exists nowhere else: show
    /// it once. Platform-admin keys must have no tenant and every other role one (`Invalid {
    /// field: "tenant" }` otherwise); an unknown tenant is `NotFound`. An agent key must name
    /// the agent of its tenant it acts for, and no other role may name one (`Invalid { field:
    /// "agent_id" }` otherwise, an agent of another tenant included). `expires_at_ms` must be
    /// in the future. The audit row's tenant is `audit.tenant`.
    pub async fn create_api_key(
        &self,
        tenant: Option<TenantId>,
        role: Role,
        agent_id: Option<i64>,
        name: &str,
        expires_at_ms: Option<i64>,
        audit: &AuditEntry<'_>,
    ) -> Result<(ApiKey, String), StoreError> {
        match (role, agent_id) {
            (Role::Agent, None) => {
                return Err(StoreError::invalid(
                    "agent_id",
                    "an agent key must name the agent it acts for",
                ));
            }
            (Role::Agent, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(StoreError::invalid(
                    "agent_id",
                    "only agent keys act for an agent",
                ));
            }
        }
        match (role, tenant) {
            (Role::PlatformAdmin, Some(_)) => {
                return Err(StoreError::invalid(
                    "tenant",
                    "platform-admin keys have no tenant",
                ));
            }
            (Role::PlatformAdmin, None) | (_, Some(_)) => {}
            (_, None) => {
                return Err(StoreError::invalid("tenant", "this role needs a tenant"));
            }
        }
        check_name("name", name)?;
        let created_at_ms = now_ms();
        if let Some(expires) = expires_at_ms
            && expires <= created_at_ms
        {
            return Err(StoreError::invalid("expires_at", "must be in the future"));
        }

        let mut attempts = 0;
        loop {
            attempts += 1;
            let (key, prefix, hash) = generate_key()?;
            let id = Uuid::now_v7();
            // The agent must be the key's tenant's (the foreign key alone would take another
            // tenant's agent): checked in the statement itself, so no gap between the check
            // and the insert.
            let inserted: Result<Option<TextIdRow>, StoreError> = self
                .change(
                    "api key prefix",
                    "INSERT INTO api_keys \
                     (id, tenant_id, name, role, prefix, hash, created_at, expires_at, agent_id) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
                     WHERE $9 IS NULL \
                        OR EXISTS (SELECT 1 FROM agents WHERE id = $9 AND tenant_id = $2) \
                     RETURNING id",
                    args![
                        id,
                        tenant,
                        name,
                        role.as_str(),
                        prefix.as_str(),
                        hash,
                        created_at_ms,
                        expires_at_ms,
                        agent_id
                    ],
                    AuditWrite {
                        entry: audit,
                        tenant: audit.tenant,
                    },
                    |row: &TextIdRow| row.0.clone(),
                )
                .await;
            match inserted {
                Ok(Some(_)) => {
                    let listed = ApiKey {
                        id,
                        tenant,
                        name: name.to_owned(),
                        role,
                        agent_id,
                        prefix,
                        created_at_ms,
                        expires_at_ms,
                        revoked_at_ms: None,
                        last_used_at_ms: None,
                    };
                    return Ok((listed, key));
                }
                // Only the agent check can make the INSERT ... SELECT insert nothing.
                Ok(None) => {
                    return Err(match agent_id {
                        // No number: the store's is not the one the API showed.
                        Some(_) => {
                            StoreError::invalid("agent_id", "not one of this tenant's agents")
                        }
                        None => StoreError::Internal("INSERT ... RETURNING returned no row".into()),
                    });
                }
                // The only unique columns are the random prefix and the random id: draw again.
                Err(StoreError::Conflict { .. }) if attempts < PREFIX_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Who `key` belongs to, if it is a current key: None when malformed (no database lookup),
    /// unknown, wrong, revoked, expired at `now_ms`, or of a disabled tenant. Does not touch
    /// `last_used_at` (see [`Store::touch_api_key`]).
    pub async fn authenticate(
        &self,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<Principal>, StoreError> {
        Ok(match self.check_api_key(key, now_ms).await? {
            KeyCheck::Valid { principal, .. } => Some(principal),
            KeyCheck::Invalid | KeyCheck::TenantDisabled(_) => None,
        })
    }

    /// [`Store::authenticate`] with the reasons a caller acts on: the key's expiry, and a
    /// disabled tenant told apart from a bad key. A revoked or expired key of a disabled tenant
    /// is `Invalid`: the tenant's state is only told to the holder of a key that would work.
    pub async fn check_api_key(&self, key: &str, now_ms: i64) -> Result<KeyCheck, StoreError> {
        let Some(prefix) = key_prefix(key) else {
            return Ok(KeyCheck::Invalid);
        };
        let row: Option<KeyAuthRow> = self
            .fetch_optional(
                Use::Read,
                "SELECT k.id, k.tenant_id, k.role, k.agent_id, k.hash, k.expires_at, k.revoked_at, \
                        t.disabled AS tenant_disabled \
                 FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id \
                 WHERE k.prefix = $1",
                args![prefix],
            )
            .await?;
        let Some(row) = row else {
            return Ok(KeyCheck::Invalid);
        };
        if !hash_matches(&key_hash(key), &row.hash) {
            return Ok(KeyCheck::Invalid);
        }
        let expired = row.expires_at_ms.is_some_and(|at| at <= now_ms);
        if row.revoked || expired {
            return Ok(KeyCheck::Invalid);
        }
        if row.tenant_disabled
            && let Some(tenant) = row.tenant
        {
            return Ok(KeyCheck::TenantDisabled(tenant));
        }
        Ok(KeyCheck::Valid {
            principal: Principal {
                key_id: row.id,
                tenant: row.tenant,
                role: row.role,
                agent_id: row.agent_id,
            },
            expires_at_ms: row.expires_at_ms,
        })
    }

    /// The keys of a tenant (None: the platform-admin keys), oldest first, revoked and
    /// expired ones included. Never hashes.
    pub async fn list_api_keys(&self, tenant: Option<TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        match tenant {
            Some(tenant) => {
                const SQL: &str = concat!(
                    "SELECT ",
                    key_cols!(),
                    " FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id"
                );
                self.fetch_all(Use::Read, SQL, args![tenant]).await
            }
            None => {
                const SQL: &str = concat!(
                    "SELECT ",
                    key_cols!(),
                    " FROM api_keys WHERE tenant_id IS NULL ORDER BY created_at, id"
                );
                self.fetch_all(Use::Read, SQL, args![]).await
            }
        }
    }

    /// Revokes a key of `tenant` (None: a platform-admin key). True if the key exists there
    /// (revoking twice keeps the first revocation time, and is audited again); false if not,
    /// and then nothing is written.
    pub async fn revoke_api_key(
        &self,
        tenant: Option<TenantId>,
        key_id: Uuid,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let (sql, args) = match tenant {
            Some(tenant) => (
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) \
                 WHERE id = $1 AND tenant_id = $3 RETURNING id",
                args![key_id, now_ms(), tenant],
            ),
            None => (
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) \
                 WHERE id = $1 AND tenant_id IS NULL RETURNING id",
                args![key_id, now_ms()],
            ),
        };
        let changed: Option<TextIdRow> = self
            .change(
                "api key",
                sql,
                args,
                AuditWrite {
                    entry: audit,
                    tenant: audit.tenant,
                },
                |row: &TextIdRow| row.0.clone(),
            )
            .await?;
        Ok(changed.is_some())
    }

    /// Records that a key was used at `now_ms`, at most once per [`TOUCH_GRANULARITY_MS`].
    /// Best effort: callers may ignore the error.
    pub async fn touch_api_key(&self, key_id: Uuid, now_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
            args![key_id, now_ms, now_ms.saturating_sub(TOUCH_GRANULARITY_MS)],
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let (key, prefix, hash) = generate_key().expect("randomness");
        assert_eq!(key.len(), 67);
        assert!(key.starts_with("sy_"));
        assert_eq!(key_prefix(&key), Some(prefix.as_str()));
        assert_eq!(prefix.len(), 12);
        assert_eq!(hash, hex::encode(Sha256::digest(key.as_bytes())));
        assert!(hash_matches(&key_hash(&key), &hash));
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        let good = format!("sy_{}", "a".repeat(64));
        assert!(key_prefix(&good).is_some());
        for bad in [
            String::new(),
            "sy_".into(),
            format!("sy_{}", "a".repeat(63)),
            format!("sy_{}", "a".repeat(65)),
            format!("sy_{}", "A".repeat(64)),
            format!("xx_{}", "a".repeat(64)),
            format!("sy_{}é", "a".repeat(62)),
        ] {
            assert_eq!(key_prefix(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hash_comparison_rejects_near_misses_and_garbage() {
        let h = key_hash("sy_x");
        let hex_h = hex::encode(h);
        assert!(hash_matches(&h, &hex_h));
        let mut other = h;
        other[31] ^= 1;
        assert!(!hash_matches(&other, &hex_h));
        assert!(!hash_matches(&h, "zz"));
        assert!(!hash_matches(&h, ""));
    }
}
