//! Which FreeSWITCH modules switchyard's features need, so that a node lacking one is named
//! at connect ("node fs2: beep detection will not work: mod_avmd is not loaded") instead of
//! failing call by call. Pure: the core asks `api module_exists <module>` for every module
//! of the features in use (`mod_commands.c`, `module_exists_function`: the body is exactly
//! `true` or `false`) and hands the answers to [`unavailable`].
//!
//! Why ask rather than find out: FreeSWITCH hangs a channel up (DESTINATION_OUT_OF_ORDER)
//! when told to run an application it does not have, a missing file format plays nothing,
//! and an `execute_on_answer` of a missing application does nothing at all. A default build
//! leaves mod_avmd out, mod_amd is not in FreeSWITCH's tree, and mod_oreka left the tree
//! after 1.10.12.

use super::config::DriverConfig;

/// Something switchyard does that needs modules on the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// `originate`, `uuid_bridge`, `uuid_kill`, `uuid_setvar`, `uuid_broadcast`,
    /// `uuid_record`, `show channels`: every call switchyard handles.
    CallControl,
    /// `park`, `playback`, `eavesdrop` (listen, whisper, barge), `play_and_get_digits`,
    /// `record`, `transfer`: the applications the driver runs on legs.
    DialplanApplications,
    /// Agents' phones and customers behind gateways (`sofia/...`, `user/...` on SIP).
    SipDialling,
    /// Queue prompts and announcements (`.wav` files).
    Prompts,
    /// `local_stream://moh`, the default music while waiting.
    MusicOnHold,
    /// The tones played when a sound file is missing (`tone_stream://`).
    Tones,
    /// Campaigns' answering-machine detection (`execute_on_answer=amd`, `amd_result`).
    AnsweringMachineDetection,
    /// A machine's beep (`CUSTOM avmd::beep`, for legs that run `avmd_start`).
    BeepDetection,
    /// Recorder legs to switchyard's endpoint (`sofia` originate of `&eavesdrop(...)`).
    LiveRecording,
    /// mod_oreka's fork of the customer's leg (`oreka_record`).
    OrekaRecording,
    /// `uuid_record` to an `http_cache://` path: the file is uploaded when it closes.
    RecordingUpload,
}

impl Feature {
    /// Every feature, in the order reports list them.
    pub const ALL: [Feature; 11] = [
        Feature::CallControl,
        Feature::DialplanApplications,
        Feature::SipDialling,
        Feature::Prompts,
        Feature::MusicOnHold,
        Feature::Tones,
        Feature::AnsweringMachineDetection,
        Feature::BeepDetection,
        Feature::LiveRecording,
        Feature::OrekaRecording,
        Feature::RecordingUpload,
    ];

    /// A stable name for logs, the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::CallControl => "call-control",
            Feature::DialplanApplications => "dialplan-applications",
            Feature::SipDialling => "sip-dialling",
            Feature::Prompts => "prompts",
            Feature::MusicOnHold => "music-on-hold",
            Feature::Tones => "tones",
            Feature::AnsweringMachineDetection => "answering-machine-detection",
            Feature::BeepDetection => "beep-detection",
            Feature::LiveRecording => "live-recording",
            Feature::OrekaRecording => "oreka-recording",
            Feature::RecordingUpload => "recording-upload",
        }
    }

    /// The modules the feature needs, each of them (read from the modules' own sources:
    /// `SWITCH_ADD_API` / `SWITCH_ADD_APP` / the file and stream interfaces they register).
    pub fn modules(self) -> &'static [&'static str] {
        match self {
            Feature::CallControl => &["mod_commands"],
            Feature::DialplanApplications => &["mod_dptools"],
            Feature::SipDialling => &["mod_sofia"],
            Feature::Prompts => &["mod_sndfile"],
            Feature::MusicOnHold => &["mod_local_stream"],
            Feature::Tones => &["mod_tone_stream"],
            Feature::AnsweringMachineDetection => &["mod_amd"],
            Feature::BeepDetection => &["mod_avmd"],
            // The legs are SIP calls running mod_dptools' `eavesdrop`.
            Feature::LiveRecording => &["mod_sofia", "mod_dptools"],
            Feature::OrekaRecording => &["mod_oreka"],
            Feature::RecordingUpload => &["mod_http_cache"],
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A feature that will not work on a node, and the module it lacks (one entry per missing
/// module: a feature lacking two modules is listed twice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeatureGap {
    pub feature: Feature,
    pub module: &'static str,
}

impl std::fmt::Display for FeatureGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} will not work: {} is not loaded",
            self.feature, self.module
        )
    }
}

/// The features `cfg` uses. Campaign answering-machine and beep detection are always
/// counted: campaigns are configured live through the API, after the nodes connected, so a
/// node's report must say up front whether they can work there. Recording features follow
/// `[recording]`; the tones follow the fallbacks when they are tone streams.
pub fn features_in_use(cfg: &DriverConfig) -> Vec<Feature> {
    Feature::ALL
        .into_iter()
        .filter(|f| match f {
            Feature::Tones => [&cfg.fallback_music, &cfg.fallback_prompt]
                .iter()
                .any(|s| s.starts_with("tone_stream://")),
            Feature::LiveRecording => cfg.recording.endpoint.is_some(),
            Feature::OrekaRecording => cfg.recording.oreka && cfg.recording.endpoint.is_some(),
            Feature::RecordingUpload => cfg.recording.switch_path.starts_with("http_cache://"),
            _ => true,
        })
        .collect()
}

/// The modules to ask about for `features`, each once, sorted.
pub fn modules_to_ask(features: &[Feature]) -> Vec<&'static str> {
    let mut m: Vec<&'static str> = features.iter().flat_map(|f| f.modules()).copied().collect();
    m.sort_unstable();
    m.dedup();
    m
}

/// The gaps of `features` on a node whose `module_exists` answers are `loaded` (`None`: no
/// answer, the connection went; such a module is not reported, the next connection asks
/// again). In feature order, then module order.
pub fn unavailable(
    features: &[Feature],
    loaded: &[(&'static str, Option<bool>)],
) -> Vec<FeatureGap> {
    let mut gaps = Vec::new();
    for &feature in features {
        for &module in feature.modules() {
            let missing = loaded
                .iter()
                .any(|(m, l)| *m == module && *l == Some(false));
            if missing {
                gaps.push(FeatureGap { feature, module });
            }
        }
    }
    gaps
}

/// `module_exists`'s body as a yes or no: FreeSWITCH writes exactly `true` or `false`;
/// anything else (an error, an empty body) is no answer.
pub fn read_answer(body: &[u8]) -> Option<bool> {
    match String::from_utf8_lossy(body).trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_module_is_reported_for_exactly_the_features_that_need_it() {
        let features = Feature::ALL.to_vec();
        let asked = modules_to_ask(&features);
        let answers: Vec<_> = asked
            .iter()
            .map(|m| (*m, Some(*m != "mod_dptools")))
            .collect();
        assert_eq!(
            unavailable(&features, &answers),
            [
                FeatureGap {
                    feature: Feature::DialplanApplications,
                    module: "mod_dptools"
                },
                FeatureGap {
                    feature: Feature::LiveRecording,
                    module: "mod_dptools"
                },
            ]
        );
        let all: Vec<_> = asked.iter().map(|m| (*m, Some(true))).collect();
        assert_eq!(unavailable(&features, &all), []);
        let unanswered: Vec<_> = asked.iter().map(|m| (*m, None)).collect();
        assert_eq!(unavailable(&features, &unanswered), []);
    }

    #[test]
    fn recording_features_are_asked_about_only_when_configured() {
        let mut cfg = DriverConfig::new("127.0.0.1:8021", "ClueCon");
        let plain = features_in_use(&cfg);
        assert!(plain.contains(&Feature::BeepDetection));
        assert!(plain.contains(&Feature::AnsweringMachineDetection));
        assert!(!plain.contains(&Feature::LiveRecording));
        assert!(!modules_to_ask(&plain).contains(&"mod_oreka"));
        cfg.recording.endpoint = Some(super::super::EndpointSetup::default());
        cfg.recording.oreka = true;
        cfg.recording.switch_path =
            "http_cache://http://sy:8080/v1/recordings/upload/{file}".into();
        let rec = features_in_use(&cfg);
        let asked = modules_to_ask(&rec);
        for m in ["mod_oreka", "mod_http_cache", "mod_sofia"] {
            assert!(asked.contains(&m), "{asked:?}");
        }
        assert_eq!(
            asked.iter().filter(|m| **m == "mod_sofia").count(),
            1,
            "asked once"
        );
    }

    #[test]
    fn only_true_and_false_are_answers() {
        assert_eq!(read_answer(b"true"), Some(true));
        assert_eq!(read_answer(b"false\n"), Some(false));
        assert_eq!(read_answer(b"-ERR no reply\n"), None);
        assert_eq!(read_answer(b""), None);
    }
}
