//! Synthetic recordings: a real WAV file per `uuid_record`, with audibly different content
//! per party so that recording ingest (duration, channels, silence ratio) has something real
//! to chew on.
//!
//! The two parties take turns talking in 2-second spurts: party A is a 440 Hz-ish tone, party
//! B a 660 Hz-ish one (both nudged by the recording's seed). In stereo A is left and B right;
//! in mono both are mixed. Masked intervals are written as digital silence.

use std::path::Path;
use std::time::Duration;

use super::core::RecordingJob;
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
    let rate = job.sample_rate.max(1) as f64;
    let total = (job.duration.min(MAX_RECORDING).as_secs_f64() * rate) as u64;
    let fa = 420.0 + (job.seed % 40) as f64;
    let fb = 640.0 + ((job.seed >> 8) % 40) as f64;
    let spurt = (2.0 * rate) as u64;
    let mut mask_iter = job.masked.iter().peekable();
    for n in 0..total {
        let t = n as f64 / rate;
        let at = Duration::from_secs_f64(t);
        while mask_iter.peek().is_some_and(|(_, e)| *e <= at) {
            mask_iter.next();
        }
        let masked = mask_iter.peek().is_some_and(|(s, e)| *s <= at && at < *e);
        let a_talks = (n / spurt).is_multiple_of(2);
        let (a, b) = if masked {
            (0.0, 0.0)
        } else if a_talks {
            ((std::f64::consts::TAU * fa * t).sin() * 0.3, 0.0)
        } else {
            (0.0, (std::f64::consts::TAU * fb * t).sin() * 0.3)
        };
        let s = |x: f64| (x * i16::MAX as f64) as i16;
        if job.stereo {
            w.write_sample(s(a)).map_err(io)?;
            w.write_sample(s(b)).map_err(io)?;
        } else {
            w.write_sample(s(a + b)).map_err(io)?;
        }
    }
    w.finalize().map_err(io)
}
