//! Number lookup: the dialled number, lightly normalised, to a flow id.
//!
//! ```text
//!   "+1 (555) 010-0100" --normalise--> "15550100100" --numbers--> flow id
//!                                                     \-- none --> default_flow
//! ```
//!
//! Normalisation strips spaces, `-`, `.`, `(`, `)` and one leading `+`: carriers hand the same
//! DID over as `+15550100100` or `15550100100` depending on the gateway's profile, and both must
//! reach the same flow. It does not guess national prefixes (`0044...` vs `+44...`, a trunk `0`):
//! such numbers are configured as they are dialled. Two routes that normalise alike are refused.

use std::collections::BTreeMap;

use super::model::NumberPlan;
use super::{MAX_NUMBERS, MAX_STRING_LEN};
use crate::DialplanError;

/// The comparison form of a number: separators and a leading `+` removed. `None` if what is left
/// is empty or holds anything but keys (`0-9`, `*`, `#`).
pub fn normalise_number(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let out: String = body
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let ok = !out.is_empty()
        && out.len() <= 32
        && out
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
    ok.then_some(out)
}

impl NumberPlan {
    /// Refuses a bad number, two routes for one number, or a flow `flow_exists` does not know.
    pub fn validate(&self, flow_exists: impl Fn(&str) -> bool) -> Result<(), DialplanError> {
        if self.numbers.len() > MAX_NUMBERS {
            return Err(DialplanError::invalid(
                "numbers",
                format!("more than {MAX_NUMBERS} numbers"),
            ));
        }
        if !flow_exists(&self.default_flow) {
            return Err(DialplanError::invalid("default_flow", "no such flow"));
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, route) in self.numbers.iter().enumerate() {
            let path = format!("numbers[{i}]");
            if route.number.len() > MAX_STRING_LEN {
                return Err(DialplanError::invalid(format!("{path}.number"), "too long"));
            }
            let Some(norm) = normalise_number(&route.number) else {
                return Err(DialplanError::invalid(
                    format!("{path}.number"),
                    "not a number: digits, * and # with an optional leading + (spaces, dashes, dots and parentheses are ignored), at most 32 keys",
                ));
            };
            if let Some(first) = seen.insert(norm, i) {
                return Err(DialplanError::invalid(
                    format!("{path}.number"),
                    format!("the same number as numbers[{first}]"),
                ));
            }
            if !flow_exists(&route.flow) {
                return Err(DialplanError::invalid(
                    format!("{path}.flow"),
                    "no such flow",
                ));
            }
        }
        Ok(())
    }

    /// The flow for a dialled number: its route's, or the default. Linear: a plan is looked up
    /// once per call and the API may build an index if plans grow large.
    pub fn flow_for(&self, dialled: &str) -> &str {
        let Some(wanted) = normalise_number(dialled) else {
            return &self.default_flow;
        };
        self.numbers
            .iter()
            .find(|r| normalise_number(&r.number).as_deref() == Some(wanted.as_str()))
            .map_or(self.default_flow.as_str(), |r| r.flow.as_str())
    }
}
