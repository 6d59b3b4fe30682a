//! Synthetic recordings: a real WAV file per `uuid_record`, whose audio is the recorded
//! parties' tones ([`super::tone`]), so a test can tell who is where by frequency and a
//! `uuid_record` file agrees with a recorder leg's RTP of the same call.
//!
//! Layout as captured (`uuid-record.md`): in stereo the left channel is what the recorded
//! channel itself says (its read stream) and the right what it hears (its bridged peer, which
//! changes on a transfer; silence while it has none); in mono the two are mixed. A paused
//! stretch is not in the file at all; a masked stretch is digital silence on both channels.
//! Offsets in a [`RecordingJob`] are in file time (pauses already taken out).

use std::path::Path;
use std::time::Duration;

use super::core::RecordingJob;
use super::tone;
use crate::error::EslError;

/// Recordings longer than this are cut (a runaway test must not fill the disk).
pub const MAX_RECORDING: Duration = Duration::from_secs(4 * 3600);

/// Writes `job` as 16-bit PCM WAV, creating parent directories.
pub fn write_recording(job: &RecordingJob) -> Result<(), EslError> {
    let path = Path::new(&job.path);
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let channels = if job.stereo { 2 } else { 1 };
    let spec = hound::WavSpec {
        channels,
        sample_rate: job.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let io = |e: hound::Error| match e {
        hound::Error::IoError(e) => EslError::Io(e),
        other => EslError::Io(std::io::Error::other(other.to_string())),
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(io)?;
    let rate = u64::from(job.sample_rate.max(1));
    let total = job.duration.min(MAX_RECORDING).as_micros() as u64 * rate / 1_000_000;
    let near: Vec<u32> = job.said_hz.into_iter().collect();
    let mut far_iter = job.heard_hz.iter().peekable();
    let mut far: Vec<u32> = Vec::new();
    let mut mask_iter = job.masked.iter().peekable();
    for n in 0..total {
        let at = Duration::from_micros(n * 1_000_000 / rate);
        while let Some((from, hz)) = far_iter.peek() {
            if *from > at {
                break;
            }
            far = hz.iter().copied().collect();
            far_iter.next();
        }
        while mask_iter.peek().is_some_and(|(_, e)| *e <= at) {
            mask_iter.next();
        }
        let masked = mask_iter.peek().is_some_and(|(s, e)| *s <= at && at < *e);
        let (a, b) = if masked {
            (0.0, 0.0)
        } else {
            (tone::sample(&near, at), tone::sample(&far, at))
        };
        if job.stereo {
            w.write_sample(tone::to_i16(a)).map_err(io)?;
            w.write_sample(tone::to_i16(b)).map_err(io)?;
        } else {
            w.write_sample(tone::to_i16(a + b)).map_err(io)?;
        }
    }
    w.finalize().map_err(io)
}
