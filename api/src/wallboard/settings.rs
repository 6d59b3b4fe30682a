//! The wallboard's tile thresholds, stored per tenant (`GET/PUT /v1/wallboard/settings`).
//! A tile is green, amber from one value and red from another: for figures that are worse
//! when higher (waits, abandon rate) `amber_from` <= `red_from`; for service level, worse
//! when lower, `red_below` <= `amber_below`. Percentages are 0-100.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A figure that is worse when higher: amber at `amber_from` and above, red at `red_from`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rising {
    pub amber_from: f64,
    pub red_from: f64,
}

/// A figure that is worse when lower: amber under `amber_below`, red under `red_below`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Falling {
    pub amber_below: f64,
    pub red_below: f64,
}

/// Every tile's thresholds. A group left out of a PUT takes its default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WallboardSettings {
    /// Service level, percent (default: red under 80, amber under 90).
    pub service_level_pct: Falling,
    /// Longest current wait, seconds (default: amber at 60, red at 180).
    pub longest_wait_s: Rising,
    /// Calls waiting now (default: amber at 5, red at 10).
    pub waiting: Rising,
    /// Abandon rate of the day, percent (default: amber at 5, red at 10).
    pub abandon_rate_pct: Rising,
    /// Average speed of answer, seconds (default: amber at 30, red at 60).
    pub asa_s: Rising,
    /// Average handle time, seconds (default: amber at 360, red at 600).
    pub aht_s: Rising,
    /// Callbacks waiting (default: amber at 5, red at 20).
    pub callbacks: Rising,
    /// A campaign's abandon rate of the day, percent, against the 3% ledger (default: amber
    /// at 2.5, red at 3).
    pub campaign_abandon_pct: Rising,
}

impl Default for WallboardSettings {
    fn default() -> Self {
        let r = |amber_from, red_from| Rising {
            amber_from,
            red_from,
        };
        WallboardSettings {
            service_level_pct: Falling {
                amber_below: 90.0,
                red_below: 80.0,
            },
            longest_wait_s: r(60.0, 180.0),
            waiting: r(5.0, 10.0),
            abandon_rate_pct: r(5.0, 10.0),
            asa_s: r(30.0, 60.0),
            aht_s: r(360.0, 600.0),
            callbacks: r(5.0, 20.0),
            campaign_abandon_pct: r(2.5, 3.0),
        }
    }
}

/// Seconds and counts at most this (a day).
const MAX_VALUE: f64 = 86_400.0;

fn check_range(field: &str, v: f64, max: f64) -> Result<(), (String, String)> {
    if !v.is_finite() || v < 0.0 || v > max {
        return Err((
            field.to_owned(),
            format!("must be a number from 0 to {max}"),
        ));
    }
    Ok(())
}

fn rising(name: &str, r: Rising, max: f64) -> Result<(), (String, String)> {
    check_range(&format!("{name}.amber_from"), r.amber_from, max)?;
    check_range(&format!("{name}.red_from"), r.red_from, max)?;
    if r.red_from < r.amber_from {
        return Err((
            format!("{name}.red_from"),
            "must be at least amber_from".to_owned(),
        ));
    }
    Ok(())
}

impl WallboardSettings {
    /// Checks every threshold: `Err((field, message))` names the first one at fault.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let sl = self.service_level_pct;
        check_range("service_level_pct.amber_below", sl.amber_below, 100.0)?;
        check_range("service_level_pct.red_below", sl.red_below, 100.0)?;
        if sl.red_below > sl.amber_below {
            return Err((
                "service_level_pct.red_below".to_owned(),
                "must be at most amber_below".to_owned(),
            ));
        }
        rising("longest_wait_s", self.longest_wait_s, MAX_VALUE)?;
        rising("waiting", self.waiting, MAX_VALUE)?;
        rising("abandon_rate_pct", self.abandon_rate_pct, 100.0)?;
        rising("asa_s", self.asa_s, MAX_VALUE)?;
        rising("aht_s", self.aht_s, MAX_VALUE)?;
        rising("callbacks", self.callbacks, MAX_VALUE)?;
        rising("campaign_abandon_pct", self.campaign_abandon_pct, 100.0)?;
        Ok(())
    }

    /// Stored settings read back; anything unreadable (a newer server's field, say) falls
    /// back to the defaults rather than leaving a screen without thresholds.
    pub fn from_stored(v: Option<serde_json::Value>) -> WallboardSettings {
        v.and_then(|v| serde_json::from_value::<WallboardSettings>(v).ok())
            .filter(|s| s.validate().is_ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_defaults_are_the_issues_and_valid() {
        let d = WallboardSettings::default();
        assert_eq!(
            (
                d.service_level_pct.red_below,
                d.service_level_pct.amber_below
            ),
            (80.0, 90.0)
        );
        assert_eq!(
            (d.longest_wait_s.amber_from, d.longest_wait_s.red_from),
            (60.0, 180.0)
        );
        assert!(d.validate().is_ok());
    }

    #[test]
    fn a_partial_body_keeps_the_other_defaults_and_bad_values_name_their_field() {
        let s: WallboardSettings =
            serde_json::from_value(json!({"asa_s": {"amber_from": 10, "red_from": 20}})).unwrap();
        assert_eq!(s.asa_s.red_from, 20.0);
        assert_eq!(
            s.longest_wait_s,
            WallboardSettings::default().longest_wait_s
        );
        let mut bad = s;
        bad.service_level_pct.red_below = 95.0;
        assert_eq!(bad.validate().unwrap_err().0, "service_level_pct.red_below");
        let mut bad = s;
        bad.abandon_rate_pct.red_from = 150.0;
        assert_eq!(bad.validate().unwrap_err().0, "abandon_rate_pct.red_from");
        let mut bad = s;
        bad.waiting.red_from = 1.0;
        assert_eq!(bad.validate().unwrap_err().0, "waiting.red_from");
        assert!(serde_json::from_value::<WallboardSettings>(json!({"colour": 1})).is_err());
    }
}
