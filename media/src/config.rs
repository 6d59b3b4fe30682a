//! What a capture is told up front: the payload types the SDP negotiated, the sample rate,
//! the file layout and the bounds of its buffers.

use std::time::Duration;

use crate::MediaError;

/// The two directions of a recorded call. FreeSWITCH delivers them as two recorder legs
/// (`eavesdrop_bridge_aleg=true`: what the caller says; `eavesdrop_bridge_bleg=true`: what the
/// caller hears, i.e. the agent), or as mod_oreka's read and write INVITEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// What the caller says: the left channel of a stereo file.
    Caller,
    /// What the caller hears (the agent, prompts, music on hold): the right channel.
    Agent,
}

impl Leg {
    pub const ALL: [Leg; 2] = [Leg::Caller, Leg::Agent];

    pub(crate) fn index(self) -> usize {
        match self {
            Leg::Caller => 0,
            Leg::Agent => 1,
        }
    }
}

/// How the two directions land in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One channel: both directions summed (saturating), as a listener on the line hears them.
    Mono,
    /// Two channels: caller left, agent right.
    Stereo,
}

impl Layout {
    pub fn channels(self) -> u16 {
        match self {
            Layout::Mono => 1,
            Layout::Stereo => 2,
        }
    }
}

/// What a payload type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// G.711 u-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// 16-bit big-endian linear PCM, one channel, at the capture's sample rate.
    L16,
    /// RFC 4733 telephone-event at the capture's sample rate: never audio.
    TelephoneEvent,
}

impl PayloadFormat {
    /// The clock a format requires, when it has one of its own.
    fn fixed_clock_rate(self) -> Option<u32> {
        match self {
            PayloadFormat::Pcmu | PayloadFormat::Pcma => Some(8000),
            PayloadFormat::L16 | PayloadFormat::TelephoneEvent => None,
        }
    }
}

/// Payload type -> format, as the SDP offer/answer agreed (`a=rtpmap:101 telephone-event/8000`).
/// A packet whose type is not here is counted and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadMap {
    formats: [Option<PayloadFormat>; 128],
}

impl PayloadMap {
    /// A map with nothing in it.
    pub fn empty() -> Self {
        PayloadMap {
            formats: [None; 128],
        }
    }

    /// Maps `payload_type` (0..=127) to `format`, replacing what was there.
    pub fn with(mut self, payload_type: u8, format: PayloadFormat) -> Result<Self, MediaError> {
        let slot = self
            .formats
            .get_mut(usize::from(payload_type))
            .ok_or(MediaError::PayloadType { payload_type })?;
        *slot = Some(format);
        Ok(self)
    }

    pub fn get(&self, payload_type: u8) -> Option<PayloadFormat> {
        self.formats
            .get(usize::from(payload_type))
            .copied()
            .flatten()
    }

    fn iter(&self) -> impl Iterator<Item = (u8, PayloadFormat)> + '_ {
        // The array has 128 entries, so every index fits a u8.
        (0u8..)
            .zip(self.formats.iter())
            .filter_map(|(pt, format)| format.map(|f| (pt, f)))
    }
}

impl Default for PayloadMap {
    /// What FreeSWITCH's recorder legs offer (`RTP/AVP 0 101`), plus the static PCMA type.
    fn default() -> Self {
        let mut map = PayloadMap::empty();
        map.formats[0] = Some(PayloadFormat::Pcmu);
        map.formats[8] = Some(PayloadFormat::Pcma);
        map.formats[101] = Some(PayloadFormat::TelephoneEvent);
        map
    }
}

/// One capture's settings. The defaults suit FreeSWITCH's recorder legs: PCMU/PCMA with
/// telephone-event 101 at 8 kHz, 20 ms packets, stereo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// The RTP clock of every mapped format, and the output's sample rate.
    pub sample_rate: u32,
    pub layout: Layout,
    pub payload_types: PayloadMap,
    /// How long a packet may wait for the ones before it. A packet is written once it has
    /// waited this long, or once a window's worth of later audio is queued behind it; one
    /// that arrives after its place was written is late and dropped. 80 ms is four 20 ms
    /// packets: loopback and a LAN reorder far less.
    pub reorder_window: Duration,
    /// Packets held per leg at most; at the bound the oldest is written early (the window
    /// shrinks for that burst, nothing is dropped).
    pub max_queued_packets: usize,
    /// How far a stream's RTP clock may stray from its arrival times before it is re-anchored
    /// on arrival (a timestamp jump, a sender restart, clock drift); also how far a leg that
    /// sends nothing trails the clock before silence is written for it.
    pub resync_after: Duration,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            sample_rate: 8000,
            layout: Layout::Stereo,
            payload_types: PayloadMap::default(),
            reorder_window: Duration::from_millis(80),
            max_queued_packets: 50,
            resync_after: Duration::from_secs(1),
        }
    }
}

/// Bounds on the configuration, so that every buffer sized from it stays small.
const MAX_SAMPLE_RATE: u32 = 48_000;
const MAX_REORDER_WINDOW: Duration = Duration::from_secs(1);
const MAX_RESYNC_AFTER: Duration = Duration::from_secs(10);
const MAX_QUEUED_PACKETS: usize = 1000;

impl CaptureConfig {
    pub(crate) fn validate(&self) -> Result<(), MediaError> {
        let bad = |reason| Err(MediaError::Config { reason });
        if !(1..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            return bad("sample_rate must be 1..=48000 Hz");
        }
        if self.reorder_window > MAX_REORDER_WINDOW {
            return bad("reorder_window must be at most 1 s");
        }
        if !(1..=MAX_QUEUED_PACKETS).contains(&self.max_queued_packets) {
            return bad("max_queued_packets must be 1..=1000");
        }
        if self.resync_after <= self.reorder_window || self.resync_after > MAX_RESYNC_AFTER {
            return bad("resync_after must be longer than reorder_window and at most 10 s");
        }
        for (payload_type, format) in self.payload_types.iter() {
            if let Some(clock_rate) = format.fixed_clock_rate()
                && clock_rate != self.sample_rate
            {
                return Err(MediaError::ClockRate {
                    payload_type,
                    clock_rate,
                    sample_rate: self.sample_rate,
                });
            }
        }
        Ok(())
    }

    /// `duration` in samples at this capture's rate (rounded down).
    pub(crate) fn samples(&self, duration: Duration) -> u64 {
        // Whole seconds and the fraction apart: exact, and no 128-bit division on the
        // per-packet path.
        let rate = u64::from(self.sample_rate);
        let fraction = u64::from(duration.subsec_nanos()) * rate / 1_000_000_000;
        duration
            .as_secs()
            .saturating_mul(rate)
            .saturating_add(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_maps_what_freeswitch_offers() {
        let config = CaptureConfig::default();
        config.validate().unwrap();
        assert_eq!(config.payload_types.get(0), Some(PayloadFormat::Pcmu));
        assert_eq!(
            config.payload_types.get(101),
            Some(PayloadFormat::TelephoneEvent)
        );
        assert_eq!(config.payload_types.get(96), None);
    }

    #[test]
    fn rejects_g711_on_a_capture_at_another_rate() {
        let config = CaptureConfig {
            sample_rate: 16_000,
            ..CaptureConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(MediaError::ClockRate {
                payload_type: 0,
                clock_rate: 8000,
                sample_rate: 16_000
            })
        ));
        let l16 = CaptureConfig {
            sample_rate: 16_000,
            payload_types: PayloadMap::empty()
                .with(96, PayloadFormat::L16)
                .and_then(|m| m.with(97, PayloadFormat::TelephoneEvent))
                .unwrap(),
            ..CaptureConfig::default()
        };
        l16.validate().unwrap();
    }

    #[test]
    fn rejects_payload_types_outside_seven_bits_and_unbounded_settings() {
        assert!(matches!(
            PayloadMap::empty().with(128, PayloadFormat::Pcmu),
            Err(MediaError::PayloadType { payload_type: 128 })
        ));
        for config in [
            CaptureConfig {
                sample_rate: 0,
                ..CaptureConfig::default()
            },
            CaptureConfig {
                max_queued_packets: 0,
                ..CaptureConfig::default()
            },
            CaptureConfig {
                reorder_window: Duration::from_secs(5),
                ..CaptureConfig::default()
            },
            CaptureConfig {
                resync_after: Duration::from_millis(10),
                ..CaptureConfig::default()
            },
        ] {
            assert!(matches!(config.validate(), Err(MediaError::Config { .. })));
        }
    }

    #[test]
    fn converts_between_durations_and_samples() {
        let config = CaptureConfig::default();
        assert_eq!(config.samples(Duration::from_millis(20)), 160);
        assert_eq!(config.samples(Duration::from_micros(124)), 0);
    }
}
