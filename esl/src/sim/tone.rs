//! Every fake channel's "voice": one steady sine tone, so that a test can tell the parties
//! of a recording apart by frequency (Goertzel), whichever path recorded them.
//!
//! The captures did it the same way (`eavesdrop-recorder-leg.md`, `uuid-record.md`): the
//! caller's leg carried 440 Hz and the agent's 1000 Hz. Here callers (inbound socket callers,
//! campaign customers, loopback legs) sit around 440 Hz and agents (`user/...` legs) around
//! 1000 Hz, each channel a different step of [`STEP_HZ`] so that two callers of one test do
//! not sound alike either. The switch stores the tone in the channel variable
//! [`TONE_VAR`] (so `uuid_getvar <uuid> sim_tone_hz` tells a test over the event socket) and
//! both `uuid_record` WAVs ([`super::wav`]) and recorder-leg RTP synthesise from it.

use std::f64::consts::TAU;
use std::time::Duration;

/// The channel variable holding a channel's tone in Hz (an integer).
pub const TONE_VAR: &str = "sim_tone_hz";
/// Distance between two channels' tones of one class.
pub const STEP_HZ: u32 = 10;
/// Tones per class before they repeat (the 9th caller of a run sounds like the 1st).
const SLOTS: u64 = 9;
/// Peak amplitude of one tone, as a fraction of full scale: two mixed stay below clipping.
const AMPLITUDE: f64 = 0.3;

/// Who a channel is, for its voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    /// Callers and customers: 400..=480 Hz.
    Caller,
    /// Agent legs (`user/...`): 960..=1040 Hz.
    Agent,
}

/// The tone of the `n`th channel (in creation order) of class `voice`, in Hz.
pub fn tone_hz(voice: Voice, n: u64) -> u32 {
    let base = match voice {
        Voice::Caller => 400,
        Voice::Agent => 960,
    };
    // `n % SLOTS` < 9, so the cast cannot truncate.
    base + STEP_HZ * (n % SLOTS) as u32
}

/// The linear sample (-1.0..=1.0) of the sum of `tones_hz` at time `t` from the start.
/// No tones is silence.
pub fn sample(tones_hz: &[u32], t: Duration) -> f64 {
    let t = t.as_secs_f64();
    tones_hz
        .iter()
        .map(|f| (TAU * f64::from(*f) * t).sin() * AMPLITUDE)
        .sum()
}

/// The mean absolute 16-bit sample of one voice (a tone at the sim's amplitude, about 6258):
/// the `score` the silence detection of `switch_ivr_record_file_event` computes for a frame of
/// it. A `record` whose threshold is above this takes the caller's speech for silence.
pub fn speech_score() -> u32 {
    (AMPLITUDE * f64::from(i16::MAX) * 2.0 / std::f64::consts::PI) as u32
}

/// A linear sample as 16-bit PCM.
pub fn to_i16(x: f64) -> i16 {
    // Clamped first, so the cast saturates nothing.
    (x.clamp(-1.0, 1.0) * f64::from(i16::MAX)) as i16
}

/// G.711 u-law encoding of one 16-bit sample (ITU-T G.711, the segment/bias method).
pub fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7 (0..=7).
    let exponent = (31 - s.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    // Every part fits in 8 bits: sign 0x80, exponent < 8 shifted by 4, mantissa < 16.
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// G.711 u-law decoding (for tests and for reading the captures).
pub fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = i32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    // At most (15 * 8 + 132) << 7 = 32256, within i16.
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// The power of `freq_hz` in `samples` (Goertzel), normalised by the length; for telling
/// tones apart in tests.
pub fn goertzel(samples: &[i16], rate: u32, freq_hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = TAU * freq_hz / f64::from(rate.max(1));
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for x in samples {
        let s0 = f64::from(*x) / f64::from(i16::MAX) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len() as f64).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_and_agents_get_distinct_tones_in_their_bands() {
        let callers: Vec<u32> = (0..9).map(|n| tone_hz(Voice::Caller, n)).collect();
        let agents: Vec<u32> = (0..9).map(|n| tone_hz(Voice::Agent, n)).collect();
        assert!(callers.iter().all(|f| (400..=480).contains(f)));
        assert!(agents.iter().all(|f| (960..=1040).contains(f)));
        let mut all = callers.clone();
        all.extend(&agents);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 18);
    }

    #[test]
    fn ulaw_round_trips_within_the_segment_step() {
        for s in (i16::MIN..=i16::MAX).step_by(97) {
            let back = ulaw_decode(ulaw(s));
            let err = (i32::from(s) - i32::from(back)).abs();
            // The coarsest segment's step is 1024.
            assert!(err <= 1024, "{s} -> {back}");
        }
        // Silence is 0xff, as on the wire.
        assert_eq!(ulaw(0), 0xff);
    }

    #[test]
    fn goertzel_finds_the_synthesised_tone_and_not_its_neighbour_class() {
        let pcm: Vec<i16> = (0..8000)
            .map(|n| to_i16(sample(&[440], Duration::from_micros(n * 125))))
            .collect();
        assert!(goertzel(&pcm, 8000, 440.0) > 100.0 * goertzel(&pcm, 8000, 1000.0));
        assert!(goertzel(&pcm, 8000, 440.0) > 100.0 * goertzel(&pcm, 8000, 450.0));
    }
}
