//! Types shared by the store, the HTTP layer and the runtime: tenants, roles, who is calling.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Characters no name, reason or code may hold: C0 and C1 controls (`char::is_control`), and
/// the invisible bidirectional formatting characters (embeddings and overrides U+202A-202E,
/// isolates U+2066-2069, and the marks U+200E, U+200F, U+061C). The latter render a name such
/// as `"admin\u{202E}txt.exe"` reversed in every portal and log that shows it, so what an
/// operator reads is not what is stored.
pub fn is_forbidden_in_text(c: char) -> bool {
    c.is_control()
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A phone number as a read-only key sees it: every character but a leading `+` and the
/// last two replaced by `*` (`+12015550123` reads `+*********23`). Two digits tell a wallboard
/// reader which of a few known callers it is without giving a number that can be dialled or
/// matched against a list; the length stays, which says no more than the country. A number of
/// four characters or fewer (an extension) is masked whole.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let keep = if chars.len() > 4 { 2 } else { 0 };
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (i == 0 && c == '+') || i + keep >= chars.len() {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// A tenant: every row but the platform's own belongs to exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

/// What an API key may do. Platform-admin keys have no tenant and manage tenants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything within the tenant: configuration, keys, supervision.
    Admin,
    /// Supervision (pause queues, set agent states, assign, eavesdrop) and every read.
    Supervisor,
    /// Acts for one agent (the key's `agent_id`): that agent's state, dispositions of its
    /// calls, and the reads an agent desktop needs.
    Agent,
    /// Reads only.
    ReadOnly,
    /// Tenants only (no tenant of its own).
    PlatformAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::ReadOnly => "read-only",
            Role::PlatformAdmin => "platform-admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::Supervisor,
            Role::Agent,
            Role::ReadOnly,
            Role::PlatformAdmin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: Uuid,
    /// None for platform-admin keys.
    pub tenant: Option<TenantId>,
    pub role: Role,
    /// The agent an agent key acts for (its id, as in `/v1/agents/{id}`). None for every other
    /// role, and for agent keys issued before keys were bound to agents (which may only read).
    pub agent_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_numbers_keep_the_plus_and_the_last_two_characters() {
        assert_eq!(mask_number("+12015550123"), "+*********23");
        assert_eq!(mask_number("5551234"), "*****34");
        assert_eq!(mask_number("1000"), "****");
        assert_eq!(mask_number("+44"), "+**");
        assert_eq!(mask_number(""), "");
        assert_eq!(mask_number("anonymous"), "*******us");
    }

    #[test]
    fn controls_and_bidi_formatting_are_forbidden_and_letters_are_not() {
        for c in [
            '\0', '\n', '\u{7f}', '\u{85}', '\u{9f}', '\u{202A}', '\u{202E}', '\u{2066}',
            '\u{2069}', '\u{200F}',
        ] {
            assert!(is_forbidden_in_text(c), "{:?}", c);
        }
        for c in ['a', 'é', 'ש', '中', ' ', '-', '\u{2070}', '\u{2030}'] {
            assert!(!is_forbidden_in_text(c), "{:?}", c);
        }
    }
}
