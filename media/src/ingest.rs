//! Checking and measuring recordings written elsewhere: FreeSWITCH's own `uuid_record` files
//! (stereo WAV, caller left, agent right) that reach switchyard through a shared directory or an
//! HTTP PUT.
//!
//! ```no_run
//! use switchyard_media::MediaError;
//! use switchyard_media::ingest::{InspectOptions, inspect};
//!
//! match inspect("/recordings/call.wav", &InspectOptions::default()) {
//!     Ok(report) => println!("{:?} of audio, {:.0}% silent", report.duration, 100.0 * report.silence_ratio),
//!     // Cut short by a crash: the figures of what is there, and the fact that it was cut.
//!     Err(MediaError::Truncated { report, expected }) => println!("{:?} of {expected:?}", report.duration),
//!     Err(other) => println!("kept for inspection: {other}"),
//! }
//! ```
//!
//! symphonia decodes; this module streams its packets through the measures (peaks, silence
//! windows, waveform buckets) without ever holding more than one packet of samples, so memory
//! stays bounded whatever the file's length.
//!
//! symphonia does not read the file as it is. The RIFF chunk headers (only they) are walked
//! once to find the fmt chunk and the audio, and symphonia reads a view: a canonical header
//! (the checked fmt chunk, a data chunk of the length actually usable) followed by the file's
//! own audio bytes, read in place (the file is never written). Why:
//! - what a crash leaves behind is precisely a header whose lengths are wrong, and symphonia
//!   0.6's `WavReader` takes them at their word: a header never finalised (lengths 0, as hound
//!   and libsndfile put them down before the first sample) reads as no audio although the
//!   audio is there, or is refused for its RIFF length. The view's data length is what is
//!   there, never more than the header says (anything after is another chunk or the unflushed
//!   tail of a crash), so reading ends where the audio ends, and comparing it with the length
//!   written tells a cut from a complete file (rather than an end-of-file error that could as
//!   well be a failing disk);
//! - fmt chunks make symphonia's parser panic in debug builds (a 16-bit multiplication of the
//!   channel count, found by fuzzing; a channel-mask repair that shifts by 32), and fmt fields
//!   make it read audio bytes as the next chunk header; the fmt chunk it is given is checked
//!   first ([`MAX_CHANNELS`]), its mask made to agree with its count, and its extension size
//!   with its length.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::audio::well_known::{CODEC_ID_ADPCM_IMA_WAV, CODEC_ID_ADPCM_MS};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::{Hint, Probe, ProbeOptions};
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use crate::MediaError;

/// The length of one silence window.
pub const SILENCE_WINDOW: Duration = Duration::from_millis(20);
/// Waveform buckets are capped here whatever the options ask (with 32 channels: 4 MiB).
pub const MAX_PEAKS: usize = 16_384;
/// More channels than WAV's own channel masks can name is not a call recording.
pub const MAX_CHANNELS: usize = 32;
/// Chunks walked before the data chunk. Real files have two to five (fmt, fact, LIST); past
/// this the file is left to symphonia unrepaired.
const MAX_CHUNKS: usize = 64;

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectOptions {
    /// A 20 ms window whose RMS is below this is silent.
    pub silence_threshold_dbfs: f64,
    /// How many (min, max) pairs per channel the waveform holds at most (0: no waveform; capped
    /// at [`MAX_PEAKS`]).
    pub peaks: usize,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            silence_threshold_dbfs: -50.0,
            peaks: 800,
        }
    }
}

/// What a recording holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioReport {
    /// symphonia's short name for the container (`wave`).
    pub container: &'static str,
    /// symphonia's short name for the codec (`pcm_s16le`, `pcm_mulaw`, `pcm_alaw`, `pcm_f32le`).
    pub codec: &'static str,
    pub sample_rate: u32,
    pub channels: u16,
    /// Frames decoded (one sample per channel each).
    pub frames: u64,
    pub duration: Duration,
    /// The file's size.
    pub bytes: u64,
    /// The fraction of 20 ms windows in which every channel is below the threshold (nobody
    /// speaks). 0 when there are no windows.
    pub silence_ratio: f64,
    /// How many frames each waveform pair covers (the last pair may cover fewer).
    pub frames_per_peak: u64,
    /// Per channel, in the file's order: left (the caller) first in a stereo recording.
    pub per_channel: Vec<ChannelReport>,
}

/// One channel's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelReport {
    /// The loudest sample in dB relative to full scale; `None` when every sample is zero.
    pub peak_dbfs: Option<f64>,
    /// The fraction of 20 ms windows in which this channel is below the threshold.
    pub silence_ratio: f64,
    /// (min, max) per bucket of `frames_per_peak` frames, full scale being -1.0..=1.0.
    pub peaks: Vec<(f32, f32)>,
}

/// Inspects the recording at `path`. I/O errors name the path.
pub fn inspect(
    path: impl AsRef<Path>,
    options: &InspectOptions,
) -> Result<AudioReport, MediaError> {
    let path = path.as_ref();
    let with_path = |source| MediaError::RecordingIo {
        path: Some(path.to_path_buf()),
        source,
    };
    let file = File::open(path).map_err(with_path)?;
    inspect_reader(file, options).map_err(|error| match error {
        MediaError::RecordingIo { path: None, source } => with_path(source),
        other => other,
    })
}

/// Inspects a recording from any seekable source (a file, an upload's bytes in memory).
pub fn inspect_reader<R>(mut source: R, options: &InspectOptions) -> Result<AudioReport, MediaError>
where
    R: Read + Seek + Send + Sync,
{
    let bytes = source.seek(SeekFrom::End(0)).map_err(io_error)?;
    source.seek(SeekFrom::Start(0)).map_err(io_error)?;
    let layout = scan_riff(&mut source, bytes)?;
    let view = WaveView::new(source, &layout);
    let stream = MediaSourceStream::new(Box::new(view), MediaSourceStreamOptions::default());

    let mut format = PROBE
        .probe(
            &Hint::new(),
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|error| match error {
            // WAVE_FORMAT_EXTENSIBLE says what it holds in a sub-format: symphonia's words.
            SymphoniaError::Unsupported(reason) if layout.format_tag == 0xFFFE => {
                MediaError::Unsupported {
                    encoding: reason.to_owned(),
                }
            }
            SymphoniaError::Unsupported(_) => MediaError::Unsupported {
                encoding: format!("WAVE format 0x{:04x}", layout.format_tag),
            },
            other => header_error(other),
        })?;

    let container = format.format_info().short_name;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(MediaError::Malformed {
            reason: "no audio track",
        })?;
    let track_id = track.id;
    let Some(params) = track.codec_params.as_ref().and_then(|p| p.audio()) else {
        return Err(MediaError::Malformed {
            reason: "no audio track",
        });
    };
    let sample_rate = params
        .sample_rate
        .filter(|&rate| rate > 0)
        .ok_or(MediaError::Malformed {
            reason: "no sample rate",
        })?;
    let channels = params.channels.as_ref().map_or(0, |c| c.count());
    if channels == 0 {
        return Err(MediaError::Malformed {
            reason: "no channels",
        });
    }
    if channels > MAX_CHANNELS {
        return Err(MediaError::Unsupported {
            encoding: format!("{channels} channels"),
        });
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|error| match error {
            SymphoniaError::Unsupported(_) => MediaError::Unsupported {
                encoding: codec_name(params.codec),
            },
            other => header_error(other),
        })?;
    let codec = decoder.codec_info().short_name;

    let frames_hint = layout.usable_frames();
    let mut meter = Meter::new(channels, sample_rate, options, frames_hint);
    let mut planes: Vec<Vec<f32>> = Vec::with_capacity(channels);
    let mut cut = false;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // The view ends where the audio does: this takes a source that shrank meanwhile.
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                cut = true;
                break;
            }
            Err(SymphoniaError::IoError(e)) => return Err(io_error(e)),
            Err(other) => return Err(header_error(other)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let audio = decoder.decode(&packet).map_err(|error| match error {
            SymphoniaError::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => io_error(e),
            _ => MediaError::Malformed {
                reason: "a packet of audio does not decode",
            },
        })?;
        if audio.num_planes() != channels {
            return Err(MediaError::Malformed {
                reason: "the decoder changed the channel count",
            });
        }
        audio.copy_to_vecs_planar::<f32>(&mut planes);
        meter.push(&planes, audio.frames());
    }

    let report = meter.finish(container, codec, sample_rate, bytes);
    if cut || layout.is_cut() {
        let expected = layout
            .declared_frames()
            .map(|frames| frames_to_duration(frames, sample_rate));
        return Err(MediaError::Truncated {
            report: Box::new(report),
            expected,
        });
    }
    if report.frames == 0 {
        return Err(MediaError::Empty);
    }
    Ok(report)
}

/// Only WAV is registered, and its marker must open the stream (symphonia's default looks
/// through the first megabyte for one; the view always starts with it).
static PROBE: LazyLock<Probe> = LazyLock::new(|| {
    let mut probe = Probe::new_with_options(&ProbeOptions {
        // The probe reads a byte at a time and looks for the marker's first two bytes behind
        // it: two bytes read means the marker stands at offset 0.
        max_probe_depth: 2,
        ..ProbeOptions::default()
    });
    probe.register_format::<symphonia::default::formats::WavReader<'_>>();
    probe
});

fn io_error(source: io::Error) -> MediaError {
    MediaError::RecordingIo { path: None, source }
}

/// A symphonia error met while reading the header or the packets.
fn header_error(error: SymphoniaError) -> MediaError {
    match error {
        SymphoniaError::IoError(e) => io_error(e),
        SymphoniaError::DecodeError(reason) | SymphoniaError::LimitError(reason) => {
            MediaError::Malformed { reason }
        }
        SymphoniaError::Unsupported(reason) => MediaError::Unsupported {
            encoding: reason.to_owned(),
        },
        SymphoniaError::ResetRequired => MediaError::Malformed {
            reason: "the stream changes format midway",
        },
        _ => MediaError::Malformed {
            reason: "the container cannot be read",
        },
    }
}

fn codec_name(codec: symphonia::core::codecs::audio::AudioCodecId) -> String {
    match codec {
        CODEC_ID_ADPCM_MS => "adpcm_ms".to_owned(),
        CODEC_ID_ADPCM_IMA_WAV => "adpcm_ima_wav".to_owned(),
        other => format!("codec {other}"),
    }
}

fn frames_to_duration(frames: u64, sample_rate: u32) -> Duration {
    let nanos = u128::from(frames) * 1_000_000_000 / u128::from(sample_rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Where a WAV file's audio is, and what its header says about it.
#[derive(Debug, Clone)]
struct RiffLayout {
    /// Offset of the first byte of audio.
    data_at: u64,
    /// The data chunk's length as written.
    declared: u32,
    /// Bytes from the start of the audio to the end of the file.
    present: u64,
    format_tag: u16,
    /// The fmt chunk's body as symphonia will read it (see [`fmt_for_symphonia`]).
    fmt: Vec<u8>,
    bytes_per_frame: Option<u64>,
}

impl RiffLayout {
    /// 0 is what writers put down before the first sample (hound, libsndfile); `u32::MAX` is
    /// "unknown" (ffmpeg writing to a pipe). Neither says how much audio there is.
    fn placeholder(&self) -> bool {
        self.declared == 0 || self.declared == u32::MAX
    }

    /// The length the view gives the data chunk: what is there, never more than the header
    /// says (anything after is another chunk or the unflushed tail of a crash).
    fn usable(&self) -> u32 {
        let present = u32::try_from(self.present).unwrap_or(u32::MAX);
        let usable = if self.placeholder() {
            present
        } else {
            self.declared.min(present)
        };
        // u32::MAX would read as "unknown" again.
        usable.min(u32::MAX - 1)
    }

    fn is_cut(&self) -> bool {
        if self.placeholder() {
            // A 44-byte file is empty, not cut: FreeSWITCH writes those (issue #1787).
            self.declared == 0 && self.present > 0
        } else {
            u64::from(self.declared) > self.present
        }
    }

    fn usable_frames(&self) -> Option<u64> {
        Some(u64::from(self.usable()) / self.bytes_per_frame?)
    }

    fn declared_frames(&self) -> Option<u64> {
        if self.placeholder() {
            return None;
        }
        Some(u64::from(self.declared) / self.bytes_per_frame?)
    }
}

/// A fmt chunk longer than this is not a recording's (the longest real one, MS ADPCM with
/// its coefficient table, is 50 bytes).
const MAX_FMT_LEN: u32 = 256;

/// Walks the RIFF chunk headers to the data chunk, keeping the last fmt chunk on the way.
fn scan_riff<R: Read + Seek>(source: &mut R, len: u64) -> Result<RiffLayout, MediaError> {
    let ends = MediaError::Malformed {
        reason: "the file ends before its audio data",
    };
    let mut head = [0u8; 12];
    let opened = read_full(source, &mut head).map_err(io_error)?;
    if !opened || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(MediaError::NotAudio);
    }
    let mut pos = 12u64;
    let mut fmt: Option<(u16, Vec<u8>, Option<u64>)> = None;
    for _ in 0..MAX_CHUNKS {
        // Chunks start on even offsets: an odd-length chunk is followed by a pad byte.
        pos += pos & 1;
        source.seek(SeekFrom::Start(pos)).map_err(io_error)?;
        let mut header = [0u8; 8];
        if !read_full(source, &mut header).map_err(io_error)? {
            return Err(ends);
        }
        let chunk_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        match &header[0..4] {
            b"data" => {
                let Some((format_tag, fmt, bytes_per_frame)) = fmt else {
                    return Err(MediaError::Malformed {
                        reason: "no fmt chunk before the audio",
                    });
                };
                let data_at = pos + 8;
                return Ok(RiffLayout {
                    data_at,
                    declared: chunk_len,
                    present: len.saturating_sub(data_at),
                    format_tag,
                    fmt,
                    bytes_per_frame,
                });
            }
            b"fmt " => {
                if !(16..=MAX_FMT_LEN).contains(&chunk_len) {
                    return Err(MediaError::Malformed {
                        reason: "a fmt chunk of impossible length",
                    });
                }
                let mut body = vec![0u8; chunk_len as usize];
                if !read_full(source, &mut body).map_err(io_error)? {
                    return Err(ends);
                }
                fmt = Some(fmt_for_symphonia(body)?);
            }
            _ => {}
        }
        pos = pos + 8 + u64::from(chunk_len);
    }
    Err(MediaError::Malformed {
        reason: "too many chunks before the audio",
    })
}

/// Checks a fmt chunk and makes it one that symphonia reads to its exact end. Returns the
/// format tag, the body, and the bytes per frame as symphonia frames the data (PCM and float
/// by sample width, the block align being only advisory there; G.711 a byte per sample;
/// others by block).
///
/// Why: symphonia 0.6 multiplies the channel count by the sample width in 16 bits (a panic
/// in a debug build once the count passes 16383, found by fuzzing) and repairs an extensible
/// chunk's channel mask with shifts that overflow (found reading its source); and for some
/// formats it reads the extension by its own size field rather than the chunk's length, so a
/// lying field would have it read audio bytes as the next chunk's header.
fn fmt_for_symphonia(mut body: Vec<u8>) -> Result<(u16, Vec<u8>, Option<u64>), MediaError> {
    let field = |at: usize| u16::from_le_bytes([body[at], body[at + 1]]);
    // The caller read at least 16 bytes.
    let tag = field(0);
    let channels = field(2);
    let block_align = u64::from(field(12));
    let bits = u64::from(field(14));
    if usize::from(channels) > MAX_CHANNELS {
        return Err(MediaError::Unsupported {
            encoding: format!("{channels} channels"),
        });
    }
    let extension = body
        .len()
        .checked_sub(18)
        .and_then(|n| u16::try_from(n).ok());
    match (tag, extension) {
        // G.711: the extension is empty by definition.
        (0x0006 | 0x0007, Some(_)) => body[16..18].copy_from_slice(&0u16.to_le_bytes()),
        // ADPCM: the extension is what the chunk holds after its size field.
        (0x0002 | 0x0011, Some(n)) => body[16..18].copy_from_slice(&n.to_le_bytes()),
        // WAVE_FORMAT_EXTENSIBLE: symphonia reads 40 bytes and not one more.
        (0xFFFE, _) => body.truncate(40),
        _ => {}
    }
    if tag == 0xFFFE && body.len() >= 24 {
        let mask = u32::from_le_bytes([body[20], body[21], body[22], body[23]]);
        if mask.count_ones() != u32::from(channels) {
            // The first `channels` speaker positions, as symphonia would repair the mask (its
            // repair shifts past 31 bits when the mask's top bit is set). At most 32 channels.
            let own = u32::try_from((1u64 << channels) - 1).unwrap_or(u32::MAX);
            body[20..24].copy_from_slice(&own.to_le_bytes());
        }
    }
    let channels = u64::from(channels);
    let frame = match tag {
        0x0001 | 0x0003 | 0xFFFE => channels * (bits / 8),
        0x0006 | 0x0007 => channels,
        _ => block_align,
    };
    Ok((tag, body, (frame > 0).then_some(frame)))
}

/// `read_exact` that reports the end of the source as `false` rather than an error.
fn read_full<R: Read>(source: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    match source.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The file as symphonia reads it: a canonical header (RIFF, the checked fmt chunk, a data
/// chunk of the usable length) followed by the file's own audio bytes, read in place. Other
/// chunks (fact, LIST) are left out: nothing here needs them.
struct WaveView<R> {
    inner: R,
    header: Vec<u8>,
    data_at: u64,
    len: u64,
    pos: u64,
}

impl<R> WaveView<R> {
    fn new(inner: R, layout: &RiffLayout) -> Self {
        let usable = layout.usable();
        let mut header = Vec::with_capacity(28 + layout.fmt.len());
        header.extend_from_slice(b"RIFF");
        // "Unknown": the data chunk's length is the one that counts.
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        // MAX_FMT_LEN bounds it.
        header.extend_from_slice(&(layout.fmt.len() as u32).to_le_bytes());
        header.extend_from_slice(&layout.fmt);
        if layout.fmt.len() % 2 == 1 {
            header.push(0);
        }
        header.extend_from_slice(b"data");
        header.extend_from_slice(&usable.to_le_bytes());
        let len = header.len() as u64 + u64::from(usable);
        WaveView {
            inner,
            header,
            data_at: layout.data_at,
            len,
            pos: 0,
        }
    }
}

impl<R: Read + Seek> Read for WaveView<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let header_len = self.header.len() as u64;
        if self.pos < header_len {
            // pos < header_len, a small Vec's length.
            let from = &self.header[self.pos as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let left = self.len.saturating_sub(self.pos);
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        self.inner
            .seek(SeekFrom::Start(self.data_at + (self.pos - header_len)))?;
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> Seek for WaveView<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

impl<R: Read + Seek + Send + Sync> MediaSource for WaveView<R> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// The measures, fed one decoded packet at a time.
struct Meter {
    channels: usize,
    window_frames: u64,
    /// The threshold as a mean square (no square root per window).
    threshold_sq: f64,
    in_window: u64,
    window_sum_sq: Vec<f64>,
    windows: u64,
    silent_windows: Vec<u64>,
    all_silent_windows: u64,
    peak: Vec<f32>,
    frames: u64,
    waveform: Waveform,
}

impl Meter {
    fn new(
        channels: usize,
        sample_rate: u32,
        options: &InspectOptions,
        frames_hint: Option<u64>,
    ) -> Self {
        let window_nanos = SILENCE_WINDOW.as_nanos();
        let window_frames =
            u64::try_from((u128::from(sample_rate) * window_nanos).div_ceil(1_000_000_000))
                .unwrap_or(u64::MAX)
                .max(1);
        let threshold = 10f64.powf(options.silence_threshold_dbfs / 20.0);
        Meter {
            channels,
            window_frames,
            threshold_sq: threshold * threshold,
            in_window: 0,
            window_sum_sq: vec![0.0; channels],
            windows: 0,
            silent_windows: vec![0; channels],
            all_silent_windows: 0,
            peak: vec![0.0; channels],
            frames: 0,
            waveform: Waveform::new(channels, options.peaks.min(MAX_PEAKS), frames_hint),
        }
    }

    fn push(&mut self, planes: &[Vec<f32>], frames: usize) {
        for i in 0..frames {
            for ch in 0..self.channels {
                let sample = planes
                    .get(ch)
                    .and_then(|plane| plane.get(i))
                    .copied()
                    // A NaN or an infinity in a float file says nothing about loudness.
                    .filter(|s| s.is_finite())
                    .unwrap_or(0.0);
                self.window_sum_sq[ch] += f64::from(sample) * f64::from(sample);
                self.peak[ch] = self.peak[ch].max(sample.abs());
                self.waveform.sample(ch, sample);
            }
            self.waveform.end_frame();
            self.frames += 1;
            self.in_window += 1;
            if self.in_window == self.window_frames {
                self.close_window();
            }
        }
    }

    fn close_window(&mut self) {
        let n = self.in_window as f64;
        let mut all_silent = true;
        for ch in 0..self.channels {
            if self.window_sum_sq[ch] / n < self.threshold_sq {
                self.silent_windows[ch] += 1;
            } else {
                all_silent = false;
            }
            self.window_sum_sq[ch] = 0.0;
        }
        if all_silent {
            self.all_silent_windows += 1;
        }
        self.windows += 1;
        self.in_window = 0;
    }

    fn finish(
        mut self,
        container: &'static str,
        codec: &'static str,
        sample_rate: u32,
        bytes: u64,
    ) -> AudioReport {
        if self.in_window > 0 {
            // The last, shorter window counts like the others.
            self.close_window();
        }
        let ratio = |count: u64| {
            if self.windows == 0 {
                0.0
            } else {
                count as f64 / self.windows as f64
            }
        };
        let silence_ratio = ratio(self.all_silent_windows);
        let (frames_per_peak, peaks) = self.waveform.finish();
        let per_channel = peaks
            .into_iter()
            .enumerate()
            .map(|(ch, peaks)| ChannelReport {
                peak_dbfs: (self.peak[ch] > 0.0).then(|| 20.0 * f64::from(self.peak[ch]).log10()),
                silence_ratio: ratio(self.silent_windows[ch]),
                peaks,
            })
            .collect();
        AudioReport {
            container,
            codec,
            sample_rate,
            channels: u16::try_from(self.channels).unwrap_or(u16::MAX),
            frames: self.frames,
            duration: frames_to_duration(self.frames, sample_rate),
            bytes,
            silence_ratio,
            frames_per_peak,
            per_channel,
        }
    }
}

/// At most `capacity` (min, max) pairs per channel, built in one pass without knowing the
/// length: each bucket covers `per_bucket` frames (from the header's frame count when known,
/// so no merge happens), and when the buckets are full neighbours merge pairwise and buckets
/// cover twice as many frames from then on.
struct Waveform {
    capacity: usize,
    per_bucket: u64,
    filled: u64,
    current: Vec<(f32, f32)>,
    buckets: Vec<Vec<(f32, f32)>>,
}

const EMPTY_BUCKET: (f32, f32) = (f32::INFINITY, f32::NEG_INFINITY);

fn combine(a: (f32, f32), b: (f32, f32)) -> (f32, f32) {
    (a.0.min(b.0), a.1.max(b.1))
}

impl Waveform {
    fn new(channels: usize, capacity: usize, frames_hint: Option<u64>) -> Self {
        let per_bucket = match (frames_hint, u64::try_from(capacity)) {
            (Some(frames), Ok(capacity)) if capacity > 0 => frames.div_ceil(capacity).max(1),
            _ => 1,
        };
        Waveform {
            capacity,
            per_bucket,
            filled: 0,
            current: vec![EMPTY_BUCKET; channels],
            buckets: vec![Vec::with_capacity(capacity); channels],
        }
    }

    fn sample(&mut self, ch: usize, sample: f32) {
        if self.capacity > 0 {
            self.current[ch] = combine(self.current[ch], (sample, sample));
        }
    }

    fn end_frame(&mut self) {
        if self.capacity == 0 {
            return;
        }
        self.filled += 1;
        if self.filled == self.per_bucket {
            self.close(false);
        }
    }

    fn close(&mut self, last: bool) {
        let full = self
            .buckets
            .first()
            .is_some_and(|b| b.len() >= self.capacity);
        if full {
            let old = self.per_bucket;
            self.per_bucket = old.saturating_mul(2);
            let odd = self.capacity % 2 == 1;
            for (buckets, current) in self.buckets.iter_mut().zip(&mut self.current) {
                let pairs = buckets.len() / 2;
                for i in 0..pairs {
                    buckets[i] = combine(buckets[2 * i], buckets[2 * i + 1]);
                }
                if odd {
                    // The unpaired last bucket and the one being closed make one new bucket.
                    *current = combine(buckets[buckets.len() - 1], *current);
                }
                buckets.truncate(pairs);
            }
            if odd {
                self.filled += old;
            }
            if self.filled < self.per_bucket && !last {
                // Half of a new bucket: keep filling it.
                return;
            }
        }
        for (buckets, current) in self.buckets.iter_mut().zip(&mut self.current) {
            buckets.push(*current);
            *current = EMPTY_BUCKET;
        }
        self.filled = 0;
    }

    /// The frames each bucket covers (closing the last bucket may have doubled it) and the
    /// buckets per channel.
    fn finish(mut self) -> (u64, Vec<Vec<(f32, f32)>>) {
        if self.filled > 0 {
            self.close(true);
        }
        (self.per_bucket, self.buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(waveform: &mut Waveform, samples: impl IntoIterator<Item = f32>) {
        for sample in samples {
            waveform.sample(0, sample);
            waveform.end_frame();
        }
    }

    #[test]
    fn without_a_length_buckets_merge_pairwise_and_stay_within_the_capacity() {
        for capacity in [1, 2, 3, 7, 8, 800] {
            for frames in [1u32, 2, 9, 100, 1000, 4097] {
                let mut waveform = Waveform::new(1, capacity, None);
                // A ramp: bucket i must hold exactly the frames it claims to cover.
                feed(&mut waveform, (0..frames).map(|i| i as f32));
                let (per_bucket, mut buckets) = waveform.finish();
                let buckets = buckets.remove(0);
                assert!(buckets.len() <= capacity, "{capacity} {frames}");
                assert_eq!(
                    buckets.len() as u64,
                    u64::from(frames).div_ceil(per_bucket),
                    "{capacity} {frames}"
                );
                for (i, &(min, max)) in buckets.iter().enumerate() {
                    let first = i as u64 * per_bucket;
                    let last = (first + per_bucket).min(u64::from(frames)) - 1;
                    assert_eq!(
                        (min, max),
                        (first as f32, last as f32),
                        "{capacity} {frames} {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_known_length_fills_the_buckets_without_merging() {
        let mut waveform = Waveform::new(1, 800, Some(24_000));
        feed(&mut waveform, (0..24_000).map(|i| i as f32));
        let (per_bucket, mut buckets) = waveform.finish();
        assert_eq!(per_bucket, 30);
        let buckets = buckets.remove(0);
        assert_eq!(buckets.len(), 800);
        assert_eq!(buckets[799], (23_970.0, 23_999.0));
    }

    #[test]
    fn a_length_the_header_overstates_leaves_fewer_buckets_never_more() {
        let mut waveform = Waveform::new(1, 10, Some(100));
        feed(&mut waveform, (0..35).map(|i| i as f32));
        assert_eq!(waveform.finish().1[0].len(), 4);
        let mut waveform = Waveform::new(1, 10, Some(100));
        feed(&mut waveform, (0..1000).map(|i| i as f32));
        assert!(waveform.finish().1[0].len() <= 10);
    }
}
