//! What a tenant may reach on a shared FreeSWITCH. The platform admin grants each tenant its
//! agent endpoints, carrier gateways, caller ids and dialplan destinations; every dial string,
//! caller id and destination a tenant's rows carry is rebuilt from a grant and a token of safe
//! characters, never taken as written (issue 17: a tenant could dial another tenant's
//! `user/1000`, a loopback, an `error/` endpoint or any carrier gateway).
//!
//! ```text
//!   grant (platform admin)            tenant writes            what reaches FreeSWITCH
//!   user/{ext}@acme.example.com       user/1001@acme.example.com   pattern with ext "1001"
//!   gateway acme-carrier              sofia/gateway/acme-carrier/9{number}   rebuilt
//!   caller id +1555123*               +15551230001             as written (digits only)
//!   destination voicemail-*           voicemail-sales          as written (safe token)
//! ```
//!
//! Injection is impossible by construction: the tokens a tenant supplies (an extension, a
//! dial prefix) are restricted to characters FreeSWITCH never reads as syntax, and the grants
//! themselves are checked the same way when the platform admin writes them, so no `{`, `}`,
//! `,`, `^^`, `&`, `|`, quote, blank or control character can reach an originate through a
//! tenant's field. A tenant with no grants reaches nothing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::spec::FieldError;

/// Most entries in one grant list.
const MAX_GRANTS: usize = 256;
/// The placeholder of an agent endpoint pattern.
const EXT: &str = "{ext}";
/// The placeholder of a campaign's or callback's dial string.
const NUMBER: &str = "{number}";

/// A tenant's grants. See the module doc.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DialGrants {
    /// Agent and supervisor phones: dial-string patterns with `{ext}` once, such as
    /// `user/{ext}@acme.example.com` or `sofia/internal/{ext}@pbx.acme.example`. Letters,
    /// digits and `/_.@:+-` besides the placeholder.
    #[schema(max_items = 256)]
    pub agent_endpoints: Vec<String>,
    /// Carrier gateways (`sofia/gateway/<name>/...`) the tenant's campaigns and callbacks may
    /// dial through: 1-64 of letters, digits and `_.-`.
    #[schema(max_items = 256)]
    pub gateways: Vec<String>,
    /// Caller ids the tenant may present: a number (`+15551230000`) or a prefix ending in `*`
    /// (`+1555123*`).
    #[schema(max_items = 256)]
    pub caller_ids: Vec<String>,
    /// Dialplan destinations its queues may send callers to (voicemail and transfer exits):
    /// exact, or a prefix ending in `*`. Letters, digits and `#+_-.@:/`.
    #[schema(max_items = 256)]
    pub destinations: Vec<String>,
}

impl DialGrants {
    /// A lab's grants, for a switch no one else dials through (the fake switch, tests,
    /// benchmarks): `user/{ext}` phones, the gateways `carrier`, `demo`, `default` and `gw`,
    /// any caller id and any destination. Never for a shared switch.
    pub fn lab() -> DialGrants {
        DialGrants {
            agent_endpoints: vec!["user/{ext}".into()],
            gateways: ["carrier", "demo", "default", "gw"]
                .map(String::from)
                .to_vec(),
            caller_ids: vec!["*".into()],
            destinations: vec!["*".into()],
        }
    }
}

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Characters of an endpoint pattern besides its `{ext}`.
fn endpoint_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"/_.@:+-".contains(&b)
}

/// Characters of the extension a tenant puts in a pattern: no `@`, `/` or `:`, so it cannot
/// change the pattern's domain or endpoint type.
fn ext_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.+-".contains(&b)
}

fn gateway_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.-".contains(&b)
}

/// Characters of a dial prefix or suffix around `{number}` (a trunk's access digits).
fn digit_char(b: u8) -> bool {
    b.is_ascii_digit() || b"+*#".contains(&b)
}

fn destination_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"#+_-.@:/".contains(&b)
}

/// `+` then 1-20 digits, or 1-20 digits.
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `value` is granted by `grant`: equal, or `grant` ends in `*` and `value` starts with the
/// rest of it.
fn matches(grant: &str, value: &str) -> bool {
    match grant.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => grant == value,
    }
}

impl DialGrants {
    /// Checks grants as the platform admin writes them; the error names the entry.
    pub fn check(&self) -> Result<(), FieldError> {
        for (name, list) in [
            ("agent_endpoints", &self.agent_endpoints),
            ("gateways", &self.gateways),
            ("caller_ids", &self.caller_ids),
            ("destinations", &self.destinations),
        ] {
            if list.len() > MAX_GRANTS {
                return Err(bad(name, format!("at most {MAX_GRANTS} entries")));
            }
        }
        for (i, p) in self.agent_endpoints.iter().enumerate() {
            let rest = p.replacen(EXT, "", 1);
            let ok = p.matches(EXT).count() == 1
                && p.len() <= 200
                && rest.contains('/')
                && rest.bytes().all(endpoint_char);
            if !ok {
                return Err(bad(
                    &format!("agent_endpoints[{i}]"),
                    "a dial-string pattern with {ext} once, such as user/{ext}@acme.example.com: \
                     at most 200 of letters, digits and /_.@:+- besides the placeholder",
                ));
            }
        }
        for (i, g) in self.gateways.iter().enumerate() {
            if g.is_empty() || g.len() > 64 || !g.bytes().all(gateway_char) {
                return Err(bad(
                    &format!("gateways[{i}]"),
                    "a gateway name: 1-64 of letters, digits and _.-",
                ));
            }
        }
        for (i, c) in self.caller_ids.iter().enumerate() {
            let number = c.strip_suffix('*').unwrap_or(c);
            let prefix_ok = c.ends_with('*') && (number.is_empty() || number == "+");
            if !(is_number(number) || prefix_ok) {
                return Err(bad(
                    &format!("caller_ids[{i}]"),
                    "a number (+ and 1-20 digits), or a prefix of one ending in *",
                ));
            }
        }
        for (i, d) in self.destinations.iter().enumerate() {
            let body = d.strip_suffix('*').unwrap_or(d);
            if d.is_empty() || d.len() > 128 || !body.bytes().all(destination_char) {
                return Err(bad(
                    &format!("destinations[{i}]"),
                    "a dialplan destination of letters, digits and #+_-.@:/ (at most 128), \
                     or a prefix of one ending in *",
                ));
            }
        }
        Ok(())
    }

    /// An agent's (or a supervisor's) phone: one of the granted patterns with its `{ext}`
    /// filled by a safe extension. Returns the dial string rebuilt from the grant.
    pub fn endpoint(&self, field: &str, contact: &str) -> Result<String, FieldError> {
        for p in &self.agent_endpoints {
            let Some((before, after)) = p.split_once(EXT) else {
                continue;
            };
            let Some(ext) = contact
                .strip_prefix(before)
                .and_then(|r| r.strip_suffix(after))
            else {
                continue;
            };
            if (1..=64).contains(&ext.len()) && ext.bytes().all(ext_char) {
                return Ok(format!("{before}{ext}{after}"));
            }
        }
        Err(bad(field, self.endpoint_hint()))
    }

    fn endpoint_hint(&self) -> String {
        if self.agent_endpoints.is_empty() {
            return "no phone endpoints are granted to this tenant (ask the platform admin)".into();
        }
        format!(
            "one of the granted endpoints with an extension of letters, digits and _.+- in \
             place of {{ext}}: {}",
            self.agent_endpoints.join(", ")
        )
    }

    /// A campaign's or callback's dial string: `sofia/gateway/<granted gateway>/` then
    /// optional access digits, `{number}`, optional digits. Returns it rebuilt.
    pub fn gateway_dial(&self, field: &str, dial: &str) -> Result<String, FieldError> {
        let hint = || {
            if self.gateways.is_empty() {
                "no carrier gateways are granted to this tenant (ask the platform admin)".into()
            } else {
                format!(
                    "sofia/gateway/<gateway>/{NUMBER} through one of the granted gateways ({}), \
                     with at most 16 of 0-9+*# before or after {NUMBER}",
                    self.gateways.join(", ")
                )
            }
        };
        let Some(rest) = dial.strip_prefix("sofia/gateway/") else {
            return Err(bad(field, hint()));
        };
        let Some((gateway, number)) = rest.split_once('/') else {
            return Err(bad(field, hint()));
        };
        let Some(g) = self.gateways.iter().find(|g| *g == gateway) else {
            return Err(bad(field, hint()));
        };
        let Some((pre, post)) = number.split_once(NUMBER) else {
            return Err(bad(field, hint()));
        };
        let digits_ok = |s: &str| s.len() <= 16 && s.bytes().all(digit_char);
        if !(digits_ok(pre) && digits_ok(post)) {
            return Err(bad(field, hint()));
        }
        Ok(format!("sofia/gateway/{g}/{pre}{NUMBER}{post}"))
    }

    /// A caller id to present; empty (the switch's own) is always allowed.
    pub fn caller_id(&self, field: &str, number: &str) -> Result<(), FieldError> {
        if number.is_empty()
            || (is_number(number) && self.caller_ids.iter().any(|g| matches(g, number)))
        {
            return Ok(());
        }
        Err(bad(
            field,
            if self.caller_ids.is_empty() {
                "no caller ids are granted to this tenant; leave it empty or ask the platform admin"
                    .to_owned()
            } else {
                format!(
                    "one of the granted caller ids: {}",
                    self.caller_ids.join(", ")
                )
            },
        ))
    }

    /// A dialplan destination for a queue's voicemail or transfer exit.
    pub fn destination(&self, field: &str, dest: &str) -> Result<(), FieldError> {
        if dest.bytes().all(destination_char) && self.destinations.iter().any(|g| matches(g, dest))
        {
            return Ok(());
        }
        Err(bad(
            field,
            if self.destinations.is_empty() {
                "no dialplan destinations are granted to this tenant (ask the platform admin)"
                    .to_owned()
            } else {
                format!(
                    "one of the granted destinations: {}",
                    self.destinations.join(", ")
                )
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> DialGrants {
        DialGrants {
            agent_endpoints: vec!["user/{ext}@acme.example.com".into()],
            gateways: vec!["acme-carrier".into()],
            caller_ids: vec!["+15551230000".into(), "+1555124*".into()],
            destinations: vec!["voicemail-*".into(), "acme-overflow".into()],
        }
    }

    /// Every character FreeSWITCH reads as syntax in an originate or a transfer.
    const INJECTIONS: [&str; 9] = ["{", "}", ",", "^^", "&", "|", "\n", "'", " "];

    #[test]
    fn an_agent_contact_is_rebuilt_from_a_granted_pattern() {
        let g = acme();
        assert_eq!(
            g.endpoint("contact", "user/1001@acme.example.com").unwrap(),
            "user/1001@acme.example.com"
        );
        for other in [
            "user/1000",                  // another tenant's phone
            "user/1000@beta.example.com", // another domain
            "user/1001@acme.example.com@beta.example.com",
            "user/a/b@acme.example.com",
            "loopback/1001",
            "error/user_busy",
            "sofia/gateway/default/+19005550100",
            "user/@acme.example.com",
        ] {
            assert_eq!(
                g.endpoint("contact", other).unwrap_err().field,
                "contact",
                "{other}"
            );
        }
        for bad in INJECTIONS {
            let c = format!("user/10{bad}01@acme.example.com");
            assert!(g.endpoint("contact", &c).is_err(), "{c:?}");
        }
    }

    #[test]
    fn a_campaign_dials_only_through_a_granted_gateway() {
        let g = acme();
        assert_eq!(
            g.gateway_dial("dial", "sofia/gateway/acme-carrier/9{number}")
                .unwrap(),
            "sofia/gateway/acme-carrier/9{number}"
        );
        for other in [
            "sofia/gateway/alpha-carrier/{number}",
            "sofia/gateway/acme-carrier/{number}/x",
            "sofia/gateway/acme-carrier",
            "user/{number}",
            "sofia/gateway/acme-carrier/{number}{number}",
            "{origination_caller_id_number=1}sofia/gateway/acme-carrier/{number}",
        ] {
            assert!(g.gateway_dial("dial", other).is_err(), "{other}");
        }
        for bad in INJECTIONS {
            let d = format!("sofia/gateway/acme-carrier/{bad}{{number}}");
            assert!(g.gateway_dial("dial", &d).is_err(), "{d:?}");
        }
    }

    #[test]
    fn caller_ids_and_destinations_must_be_granted() {
        let g = acme();
        assert!(g.caller_id("caller_id", "").is_ok());
        assert!(g.caller_id("caller_id", "+15551230000").is_ok());
        assert!(g.caller_id("caller_id", "+15551249999").is_ok());
        assert!(g.caller_id("caller_id", "+15559990000").is_err());
        assert!(g.destination("on_timeout", "voicemail-sales").is_ok());
        assert!(g.destination("on_timeout", "acme-overflow").is_ok());
        assert!(g.destination("on_timeout", "beta-overflow").is_err());
        assert!(g.destination("on_timeout", "voicemail-a&b").is_err());
    }

    #[test]
    fn a_tenant_with_no_grants_reaches_nothing() {
        let g = DialGrants::default();
        assert!(g.endpoint("contact", "user/1000").is_err());
        assert!(
            g.gateway_dial("dial", "sofia/gateway/default/{number}")
                .is_err()
        );
        assert!(g.caller_id("caller_id", "+15551230000").is_err());
        assert!(g.destination("d", "voicemail").is_err());
    }

    #[test]
    fn grants_themselves_cannot_carry_syntax() {
        assert!(acme().check().is_ok());
        for bad in INJECTIONS {
            let g = DialGrants {
                agent_endpoints: vec![format!("user/{{ext}}@acme{bad}.example.com")],
                ..DialGrants::default()
            };
            assert_eq!(
                g.check().unwrap_err().field,
                "agent_endpoints[0]",
                "{bad:?}"
            );
            let g = DialGrants {
                gateways: vec![format!("gw{bad}")],
                ..DialGrants::default()
            };
            assert_eq!(g.check().unwrap_err().field, "gateways[0]", "{bad:?}");
            let g = DialGrants {
                destinations: vec![format!("vm{bad}")],
                ..DialGrants::default()
            };
            assert_eq!(g.check().unwrap_err().field, "destinations[0]", "{bad:?}");
        }
        let twice = DialGrants {
            agent_endpoints: vec!["user/{ext}{ext}".into()],
            ..DialGrants::default()
        };
        assert!(twice.check().is_err());
        let number = DialGrants {
            caller_ids: vec!["+1 555".into()],
            ..DialGrants::default()
        };
        assert_eq!(number.check().unwrap_err().field, "caller_ids[0]");
    }
}

/// Grants that cover the dial strings the unit tests of the specs use.
#[cfg(test)]
pub(crate) fn test_grants() -> DialGrants {
    DialGrants {
        agent_endpoints: vec!["user/{ext}".into()],
        gateways: ["carrier", "gw", "a", "default"].map(String::from).to_vec(),
        caller_ids: vec!["*".into()],
        destinations: vec!["*".into()],
    }
}

/// A stored row its tenant's grants no longer allow: it is not loaded at the next start (so
/// never dialled) until it is changed or the grants widened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Outside {
    /// `agent`, `queue` or `campaign`.
    pub kind: &'static str,
    pub id: i64,
    pub name: String,
    /// The field outside the grants, and why.
    pub field: String,
    pub message: String,
}

/// Every row of `tenant` that `grants` do not allow (a row whose config does not parse is
/// left to the boot's own report).
pub async fn outside(
    store: &crate::store::Store,
    ids: &crate::ids::IdCodec,
    tenant: crate::model::TenantId,
    grants: &DialGrants,
) -> Result<Vec<Outside>, crate::store::StoreError> {
    use crate::ids::IdKind;
    use crate::spec::{AgentSpec, QueueSpec};
    use crate::spec_campaign::CampaignSpec;
    let mut out = Vec::new();
    // Ids as the API shows them, so an operator finds the row the tenant's portal lists.
    let mut note = |kind, id, name: &str, e: FieldError| {
        let shown = match kind {
            "agent" => ids.agent(id),
            "queue" => ids.queue(id),
            _ => ids.encode(IdKind::Campaign, id),
        };
        out.push(Outside {
            kind,
            id: shown,
            name: name.to_owned(),
            field: e.field,
            message: e.message,
        })
    };
    for r in store.list_agents(tenant).await? {
        if let Ok(spec) = serde_json::from_value::<AgentSpec>(r.config.clone())
            && let Err(e) = spec.to_engine(r.id, &r.name, grants)
        {
            note("agent", r.id, &r.name, e);
        }
    }
    for r in store.list_queues(tenant).await? {
        if let Ok(spec) = serde_json::from_value::<QueueSpec>(r.config.clone())
            && let Err(e) = spec.to_engine(r.id, &r.name, grants)
        {
            note("queue", r.id, &r.name, e);
        }
    }
    for r in store.list_campaigns(tenant).await? {
        if let Ok(spec) = serde_json::from_value::<CampaignSpec>(r.config.clone())
            && let Err(e) = spec.to_engine(r.id, &r.name, grants)
        {
            note("campaign", r.id, &r.name, e);
        }
    }
    Ok(out)
}
