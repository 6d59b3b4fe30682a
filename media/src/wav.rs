//! The file shell: a capture's audio written to a WAV file as it comes.
//!
//! The header is rewritten (hound's `flush`) every `flush_every` of audio, so a process that
//! dies mid-call leaves a file that plays up to the last flush: the header's length only ever
//! covers samples that reached the file. The rest of the file is buffered in memory between
//! writes (16 KiB: half a second of 8 kHz stereo).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hound::{SampleFormat, WavSpec, WavWriter};

use crate::MediaError;
use crate::capture::Pcm;
use crate::config::CaptureConfig;

const BUFFER_BYTES: usize = 16 * 1024;
/// How often the header is brought up to date by default.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Silence written at once when a block starts after the file's end (bounds the stack
/// buffer, not the hole).
const SILENCE_CHUNK: usize = 4096;

/// How a finished file came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavSummary {
    pub path: PathBuf,
    pub frames: u64,
    pub duration: Duration,
    pub channels: u16,
    pub sample_rate: u32,
}

/// A 16-bit PCM WAV file being written.
pub struct WavSink {
    path: PathBuf,
    writer: WavWriter<BufWriter<File>>,
    channels: u16,
    sample_rate: u32,
    frames: u64,
    flushed_at: u64,
    flush_every: u64,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // hound's writer has no Debug of its own.
        f.debug_struct("WavSink")
            .field("path", &self.path)
            .field("channels", &self.channels)
            .field("sample_rate", &self.sample_rate)
            .field("frames", &self.frames)
            .field("flushed_at", &self.flushed_at)
            .finish_non_exhaustive()
    }
}

impl WavSink {
    /// Creates (truncates) `path` for audio of `channels` at `sample_rate`.
    pub fn create(
        path: impl Into<PathBuf>,
        channels: u16,
        sample_rate: u32,
        flush_every: Duration,
    ) -> Result<Self, MediaError> {
        let path = path.into();
        let spec = WavSpec {
            channels,
            sample_rate,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let wav_error = |source| MediaError::Wav {
            path: path.clone(),
            source,
        };
        let file = File::create(&path).map_err(|e| wav_error(hound::Error::IoError(e)))?;
        let writer = WavWriter::new(BufWriter::with_capacity(BUFFER_BYTES, file), spec)
            .map_err(wav_error)?;
        let flush_every =
            u64::try_from(flush_every.as_nanos() * u128::from(sample_rate) / 1_000_000_000)
                .unwrap_or(u64::MAX)
                .max(1);
        Ok(WavSink {
            path,
            writer,
            channels,
            sample_rate,
            frames: 0,
            flushed_at: 0,
            flush_every,
        })
    }

    /// A file in the capture's layout and rate, flushed every second of audio.
    pub fn for_capture(
        path: impl Into<PathBuf>,
        config: &CaptureConfig,
    ) -> Result<Self, MediaError> {
        WavSink::create(
            path,
            config.layout.channels(),
            config.sample_rate,
            DEFAULT_FLUSH_EVERY,
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Appends a block. A block that starts after the file's end (audio the capture had to
    /// discard) is preceded by silence, so the file's timeline stays the capture's.
    pub fn write(&mut self, pcm: &Pcm<'_>) -> Result<(), MediaError> {
        if pcm.channels != self.channels {
            return Err(MediaError::Channels {
                path: self.path.clone(),
                file: self.channels,
                audio: pcm.channels,
            });
        }
        let channels = usize::from(self.channels);
        // Blocks follow each other; an overlap (never produced by a capture) is not rewritten.
        let skip = usize::try_from(self.frames.saturating_sub(pcm.start)).unwrap_or(usize::MAX);
        let samples = pcm
            .samples
            .get(skip.saturating_mul(channels)..)
            .unwrap_or(&[]);
        let hole = pcm.start.saturating_sub(self.frames);
        self.reserve(hole + (samples.len() / channels) as u64)?;
        let mut left = usize::try_from(hole).unwrap_or(usize::MAX) * channels;
        while left > 0 {
            let n = left.min(SILENCE_CHUNK);
            self.put(&[0; SILENCE_CHUNK][..n])?;
            left -= n;
        }
        self.put(samples)?;
        if self.frames - self.flushed_at >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// Brings the header up to date and hands the buffered bytes to the file.
    pub fn flush(&mut self) -> Result<(), MediaError> {
        self.flushed_at = self.frames;
        let path = &self.path;
        self.writer.flush().map_err(|source| MediaError::Wav {
            path: path.clone(),
            source,
        })
    }

    /// Finalises the header and closes the file.
    pub fn finish(self) -> Result<WavSummary, MediaError> {
        let WavSink {
            path,
            writer,
            channels,
            sample_rate,
            frames,
            ..
        } = self;
        if let Err(source) = writer.finalize() {
            return Err(MediaError::Wav { path, source });
        }
        let nanos = u128::from(frames) * 1_000_000_000 / u128::from(sample_rate);
        Ok(WavSummary {
            path,
            frames,
            duration: Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
            channels,
            sample_rate,
        })
    }

    /// Refuses audio that would take the data chunk past what its 32-bit length can say.
    fn reserve(&self, frames: u64) -> Result<(), MediaError> {
        let bytes_per_frame = u64::from(self.channels) * 2;
        let limit = u64::from(u32::MAX) - 1024;
        if (self.frames + frames).saturating_mul(bytes_per_frame) > limit {
            return Err(MediaError::WavFull {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    fn put(&mut self, samples: &[i16]) -> Result<(), MediaError> {
        if samples.is_empty() {
            return Ok(());
        }
        // `reserve` bounded the total far below u32::MAX samples.
        let count = u32::try_from(samples.len()).unwrap_or(u32::MAX);
        let mut out = self.writer.get_i16_writer(count);
        for &sample in samples {
            out.write_sample(sample);
        }
        let path = &self.path;
        out.flush().map_err(|source| MediaError::Wav {
            path: path.clone(),
            source,
        })?;
        self.frames += (samples.len() / usize::from(self.channels)) as u64;
        Ok(())
    }
}
