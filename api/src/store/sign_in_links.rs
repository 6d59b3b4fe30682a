//! Sign-in links for the agent page: an admin makes one for an agent, the agent's browser
//! redeems its code once for a session (`routes::web`). Only the code's SHA-256 is kept; the
//! code is checked and spent in one statement, so two browsers racing with one link cannot
//! both get in.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::rows::{FromStoreRow, RowExt};
use super::{Store, StoreError, Use, now_ms};
use crate::model::TenantId;

/// What a code looks like: this tag and 64 lowercase hex characters (32 random bytes).
pub const LINK_TAG: &str = "syl_";
const CODE_BYTES: usize = 32;

/// A link just made: its code exists only here and in the URL handed to the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSignInLink {
    pub id: Uuid,
    pub code: String,
    pub expires_at_ms: i64,
}

/// A redeemed link: whom it signs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedeemedLink {
    pub id: Uuid,
    pub tenant: TenantId,
    /// The agent, as the store numbers it.
    pub agent_id: i64,
}

impl FromStoreRow for RedeemedLink {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(RedeemedLink {
            id: row.uuid("id")?,
            tenant: row.tenant("tenant_id")?,
            agent_id: row.i64("agent_id")?,
        })
    }
}

fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// Whether `code` has a link code's shape (no lookup for anything else).
pub fn is_link_code(code: &str) -> bool {
    code.strip_prefix(LINK_TAG).is_some_and(|body| {
        body.len() == 2 * CODE_BYTES
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Store {
    /// A new single-use link for the tenant's agent `agent_id` (store number), valid until
    /// `expires_at_ms`. Spent and expired links of the past day are cleared on the way.
    pub async fn create_sign_in_link(
        &self,
        tenant: TenantId,
        agent_id: i64,
        expires_at_ms: i64,
    ) -> Result<NewSignInLink, StoreError> {
        let now = now_ms();
        self.execute(
            "DELETE FROM agent_sign_in_links WHERE expires_at < $1",
            args![now.saturating_sub(24 * 3600 * 1000)],
        )
        .await?;
        let mut bytes = [0u8; CODE_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Internal(format!("no randomness from the OS: {e}")))?;
        let code = format!("{LINK_TAG}{}", hex::encode(bytes));
        let id = Uuid::now_v7();
        let inserted = self
            .execute(
                "INSERT INTO agent_sign_in_links (id, tenant_id, agent_id, code_hash, created_at, \
                                                  expires_at) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS \
                 (SELECT 1 FROM agents WHERE tenant_id = $2 AND id = $3)",
                args![id, tenant, agent_id, code_hash(&code), now, expires_at_ms],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(NewSignInLink {
            id,
            code,
            expires_at_ms,
        })
    }

    /// Spends a link's code: whom it signs in, or None when the code is unknown, already
    /// used or expired (one answer for all three: a guesser learns nothing).
    pub async fn redeem_sign_in_link(
        &self,
        code: &str,
        now_ms: i64,
    ) -> Result<Option<RedeemedLink>, StoreError> {
        if !is_link_code(code) {
            return Ok(None);
        }
        self.fetch_optional(
            Use::Write,
            "UPDATE agent_sign_in_links SET used_at = $2 \
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING id, tenant_id, agent_id",
            args![code_hash(code), now_ms],
        )
        .await
    }
}
