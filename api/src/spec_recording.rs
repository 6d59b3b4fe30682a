//! The recording policy as the API takes it (queues, campaigns, agents), checked and turned
//! into the engine's [`switchyard_engine::RecordingPolicy`].

use serde::{Deserialize, Serialize};
use switchyard_engine::recording::{RecordingCapture, RecordingPolicy};
use utoipa::ToSchema;

use crate::spec::{FieldError, bad};

/// When calls are recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingMode {
    /// Never, not even on request.
    #[default]
    Never,
    /// Only when the agent on the call or a supervisor asks (`POST /v1/calls/{id}/recording`).
    OnDemand,
    /// `percent` of calls from the moment they are bridged; the agent may pause, a supervisor
    /// may stop.
    Always,
    /// `percent` of calls; agents can neither pause nor stop it (they may still mask a card
    /// number).
    AlwaysForced,
    /// The older name of `always` with a `percent`; read as `always`.
    Sampled,
}

impl RecordingMode {
    fn to_engine(self) -> switchyard_engine::RecordingMode {
        use switchyard_engine::RecordingMode as E;
        match self {
            RecordingMode::Never => E::Never,
            RecordingMode::OnDemand => E::OnDemand,
            RecordingMode::Always | RecordingMode::Sampled => E::Always,
            RecordingMode::AlwaysForced => E::AlwaysForced,
        }
    }
}

/// Where the audio is captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureWay {
    /// Recorder legs from FreeSWITCH to switchyard's recorder endpoint (falls back to `switch`
    /// when they cannot be set up).
    #[default]
    Live,
    /// FreeSWITCH's `uuid_record`; the file is ingested after the call.
    Switch,
    /// mod_oreka's fork (`oreka_record`) into the recorder endpoint, on nodes where
    /// `[recording] oreka` says mod_oreka is set up; elsewhere as `live`.
    Oreka,
}

/// A recording policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSpec {
    pub policy: RecordingMode,
    /// Share of calls `always` / `always-forced` record, 0-100, drawn once per call at its
    /// arrival (rounded to a whole percent). 0 reads as 100: configurations written before
    /// sampling applied to `always` carried 0 there.
    #[schema(minimum = 0, maximum = 100)]
    pub percent: f64,
    /// Caller left, agent right; false mixes both into one channel.
    pub stereo: bool,
    pub capture: CaptureWay,
    /// Played to both parties as the recording starts (a sound file: 1-512 characters, no
    /// spaces or control characters).
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u0020\u007f-\u009f]+$"
    )]
    pub announcement: Option<String>,
}

impl Default for RecordingSpec {
    fn default() -> Self {
        RecordingSpec {
            policy: RecordingMode::Never,
            percent: 100.0,
            stereo: true,
            capture: CaptureWay::Live,
            announcement: None,
        }
    }
}

impl RecordingSpec {
    /// Checks the fields under `prefix` (`recording`) and builds the engine's policy.
    pub fn to_engine(&self, prefix: &str) -> Result<RecordingPolicy, FieldError> {
        let p = self.percent;
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return Err(bad(&format!("{prefix}.percent"), "must be 0-100"));
        }
        let sample_percent = if p == 0.0 { 100 } else { p.round() as u8 };
        let announcement = match &self.announcement {
            Some(a)
                if a.is_empty()
                    || a.len() > 512
                    || a.chars().any(|c| c.is_control() || c == ' ') =>
            {
                return Err(bad(
                    &format!("{prefix}.announcement"),
                    "a sound file: 1-512 characters, no spaces or control characters",
                ));
            }
            other => other.clone(),
        };
        Ok(RecordingPolicy {
            mode: self.policy.to_engine(),
            sample_percent,
            stereo: self.stereo,
            capture: match self.capture {
                CaptureWay::Live => RecordingCapture::Live,
                CaptureWay::Switch => RecordingCapture::Switch,
                CaptureWay::Oreka => RecordingCapture::Oreka,
            },
            announcement,
        })
    }
}

/// An agent's own recording mode, replacing the queue's or campaign's for the agent's calls.
pub fn agent_mode(mode: Option<RecordingMode>) -> Option<switchyard_engine::RecordingMode> {
    mode.map(RecordingMode::to_engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_sampled_policy_reads_as_always_with_its_percent() {
        let spec: RecordingSpec =
            serde_json::from_str(r#"{"policy": "sampled", "percent": 30}"#).unwrap();
        let p = spec.to_engine("recording").unwrap();
        assert_eq!(p.mode, switchyard_engine::RecordingMode::Always);
        assert_eq!(p.sample_percent, 30);
        assert!(p.stereo);
    }

    #[test]
    fn always_written_before_sampling_with_percent_zero_records_every_call() {
        let spec: RecordingSpec =
            serde_json::from_str(r#"{"policy": "always", "percent": 0.0}"#).unwrap();
        assert_eq!(spec.to_engine("recording").unwrap().sample_percent, 100);
    }

    #[test]
    fn a_percent_out_of_range_or_an_announcement_with_spaces_names_its_field() {
        let spec = RecordingSpec {
            percent: 101.0,
            ..RecordingSpec::default()
        };
        assert_eq!(
            spec.to_engine("recording").unwrap_err().field,
            "recording.percent"
        );
        let spec = RecordingSpec {
            announcement: Some("this call is recorded.wav".into()),
            ..RecordingSpec::default()
        };
        assert_eq!(
            spec.to_engine("recording").unwrap_err().field,
            "recording.announcement"
        );
    }
}
