//! Who may see whose personal data in the live feed (README's "Roles and personal data").
//!
//! A call's delta and its entry in the snapshot may carry personal fields: the caller's or
//! the contact's number, the caller's name, the contact's fields. Admin and supervisor keys
//! see them whole; an agent key sees them whole on the calls its own agent is on (the call's
//! `agent_id`), masked elsewhere; read-only keys and display tokens (wall screens) always
//! masked. Masked: numbers as `crate::model::mask_number` shows them, names and fields left
//! out.
//!
//! The fields are found by name, whoever published them: a new kind of event that carries a
//! number under one of these names is masked without anyone having to remember it.

use serde_json::{Map, Value};

use crate::model::{Principal, Role, mask_number};

/// Numbers: masked.
const NUMBERS: [&str; 2] = ["caller_number", "contact_number"];
/// Everything else personal: left out.
const DROPPED: [&str; 2] = ["caller_name", "contact_fields"];

/// What a live subscriber may see of personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// Everything (admin, supervisor).
    Whole,
    /// Whole on this agent's calls (its API id), masked elsewhere.
    Agent(u64),
    /// Masked everywhere (read-only keys, display tokens, agent keys bound to no agent).
    Masked,
}

impl Sight {
    /// `shown`: the API id of an agent's store id (a key names its agent by the latter, the
    /// feed by the former).
    pub fn of(who: &Principal, shown: impl Fn(i64) -> i64) -> Sight {
        match who.role {
            Role::Admin | Role::Supervisor => Sight::Whole,
            Role::Agent => who
                .agent_id
                .and_then(|a| u64::try_from(shown(a)).ok())
                .map_or(Sight::Masked, Sight::Agent),
            Role::ReadOnly | Role::PlatformAdmin => Sight::Masked,
        }
    }

    /// Whether a call object (a delta or a snapshot entry) is shown whole.
    pub fn sees_whole(self, call: &Value) -> bool {
        self.sees_agents_call(call.get("agent_id").and_then(Value::as_u64))
    }

    /// Whether a call that is `agent`'s (or no agent's) is shown whole.
    pub fn sees_agents_call(self, agent: Option<u64>) -> bool {
        match self {
            Sight::Whole => true,
            Sight::Agent(a) => agent == Some(a),
            Sight::Masked => false,
        }
    }
}

/// The names of every personal field.
pub fn personal_fields() -> impl Iterator<Item = &'static str> {
    NUMBERS.into_iter().chain(DROPPED)
}

/// Whether a call object carries any personal field.
pub fn is_personal(call: &Value) -> bool {
    call.as_object()
        .is_some_and(|o| NUMBERS.iter().chain(&DROPPED).any(|k| o.contains_key(*k)))
}

/// The call object as a subscriber who may not see it whole gets it.
pub fn masked(call: &Value) -> Value {
    let Some(o) = call.as_object() else {
        return call.clone();
    };
    let mut out = Map::with_capacity(o.len());
    for (k, v) in o {
        if DROPPED.contains(&k.as_str()) {
            continue;
        }
        let v = match v {
            Value::String(n) if NUMBERS.contains(&k.as_str()) => Value::String(mask_number(n)),
            // Anything but a string under a number's name says nothing worth keeping.
            _ if NUMBERS.contains(&k.as_str()) => Value::Null,
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// A snapshot (`LiveState::snapshot`'s shape) as `sight` may see it: each call it may not
/// see whole, masked.
pub fn snapshot_for(mut state: Value, sight: Sight) -> Value {
    if sight == Sight::Whole {
        return state;
    }
    if let Some(calls) = state.get_mut("calls").and_then(Value::as_array_mut) {
        for c in calls.iter_mut() {
            if is_personal(c) && !sight.sees_whole(c) {
                *c = masked(c);
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn who(role: Role, agent_id: Option<i64>) -> Principal {
        Principal {
            key_id: Uuid::nil(),
            tenant: None,
            role,
            agent_id,
        }
    }

    #[test]
    fn each_role_sees_what_the_readme_says() {
        let shown = |a: i64| a + 1000;
        assert_eq!(Sight::of(&who(Role::Admin, None), shown), Sight::Whole);
        assert_eq!(Sight::of(&who(Role::Supervisor, None), shown), Sight::Whole);
        assert_eq!(
            Sight::of(&who(Role::Agent, Some(7)), shown),
            Sight::Agent(1007),
            "the feed's id of the key's agent"
        );
        assert_eq!(Sight::of(&who(Role::Agent, None), shown), Sight::Masked);
        assert_eq!(Sight::of(&who(Role::ReadOnly, None), shown), Sight::Masked);
    }

    #[test]
    fn a_masked_call_keeps_two_digits_of_each_number_and_loses_names_and_fields() {
        let call = json!({"id": "c", "agent_id": 7, "state": "talking",
            "caller_number": "+12015550123", "caller_name": "Jane Roe",
            "contact_number": "+447700900123", "contact_fields": {"plan": "gold"},
            "campaign_name": "renewals"});
        assert!(is_personal(&call));
        assert_eq!(
            masked(&call),
            json!({"id": "c", "agent_id": 7, "state": "talking",
                "caller_number": "+*********23", "contact_number": "+**********23",
                "campaign_name": "renewals"})
        );
        assert!(!is_personal(&masked(
            &json!({"id": "c", "contact_fields": {}})
        )));
        assert!(!is_personal(&json!({"id": "c", "state": "waiting"})));
    }

    #[test]
    fn an_agent_sees_whole_only_the_calls_it_is_on() {
        let mine = json!({"id": "a", "agent_id": 7, "caller_number": "+12015550123"});
        let theirs = json!({"id": "b", "agent_id": 8, "caller_number": "+12015550124"});
        let waiting = json!({"id": "c", "caller_number": "+12015550125"});
        let state = json!({"calls": [mine, theirs, waiting], "agents": []});
        let seen = snapshot_for(state.clone(), Sight::Agent(7));
        let numbers: Vec<&Value> = seen["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["caller_number"])
            .collect();
        assert_eq!(
            numbers,
            [
                &json!("+12015550123"),
                &json!("+*********24"),
                &json!("+*********25")
            ]
        );
        assert_eq!(snapshot_for(state.clone(), Sight::Whole), state);
        assert_eq!(
            snapshot_for(state, Sight::Masked)["calls"][0]["caller_number"],
            "+*********23"
        );
    }
}
