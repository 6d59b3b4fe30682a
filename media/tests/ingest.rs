//! Recordings written elsewhere (FreeSWITCH's `uuid_record`): what a good file measures, and
//! how each way a real file goes wrong comes out.
#![cfg(feature = "ingest")]

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Duration;

use switchyard_media::ingest::{InspectOptions, inspect, inspect_reader};
use switchyard_media::{MediaError, Pcm, WavSink};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-media-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `n` samples of a sine at `freq` Hz and `amp` of full scale.
fn sine(freq: f64, amp: f64, rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (amp * 32767.0 * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
        })
        .collect()
}

fn write_wav(path: &PathBuf, channels: u16, rate: u32, interleaved: &[i16]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for &s in interleaved {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
}

fn interleave(left: &[i16], right: &[i16]) -> Vec<i16> {
    left.iter().zip(right).flat_map(|(&l, &r)| [l, r]).collect()
}

/// A canonical 44-byte header: PCM 16-bit, with the two lengths as given.
fn header(channels: u16, rate: u32, riff_len: u32, data_len: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&riff_len.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    h.extend_from_slice(&(2 * channels).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[test]
fn a_stereo_call_measures_rate_channels_duration_silence_and_peaks() {
    // 3 s at 8 kHz: the caller (left, 440 Hz at -6 dBFS) speaks for 2 s; the agent (right,
    // 1000 Hz at -12 dBFS) throughout except 2.0-2.5 s, when nobody does.
    let rate = 8000;
    let mut left = sine(440.0, 0.5, rate, 24_000);
    left[16_000..].fill(0);
    let mut right = sine(1000.0, 0.25, rate, 24_000);
    right[16_000..20_000].fill(0);
    let path = scratch("stereo.wav");
    write_wav(&path, 2, rate, &interleave(&left, &right));

    let report = inspect(&path, &InspectOptions::default()).unwrap();
    assert_eq!(report.container, "wave");
    assert_eq!(report.codec, "pcm_s16le");
    assert_eq!(report.sample_rate, 8000);
    assert_eq!(report.channels, 2);
    assert_eq!(report.frames, 24_000);
    assert_eq!(report.duration, Duration::from_secs(3));
    assert_eq!(report.bytes, 44 + 4 * 24_000);
    // 150 windows of 20 ms: 25 with nobody, 50 without the caller, 25 without the agent.
    assert!((report.silence_ratio - 25.0 / 150.0).abs() < 1e-9);
    let [caller, agent] = &report.per_channel[..] else {
        panic!("two channels");
    };
    assert!((caller.silence_ratio - 50.0 / 150.0).abs() < 1e-9);
    assert!((agent.silence_ratio - 25.0 / 150.0).abs() < 1e-9);
    let caller_peak = caller.peak_dbfs.unwrap();
    let agent_peak = agent.peak_dbfs.unwrap();
    assert!((caller_peak - -6.02).abs() < 0.05, "{caller_peak}");
    assert!((agent_peak - -12.04).abs() < 0.05, "{agent_peak}");

    // 800 pairs of 30 frames: the caller's pairs span the tone, then flat zero.
    assert_eq!(report.frames_per_peak, 30);
    assert_eq!(caller.peaks.len(), 800);
    assert_eq!(agent.peaks.len(), 800);
    for (i, &(min, max)) in caller.peaks.iter().enumerate() {
        if i < 533 {
            assert!(max > 0.3 && min < -0.3, "bucket {i}: {min} {max}");
        } else if i > 533 {
            assert_eq!((min, max), (0.0, 0.0), "bucket {i}");
        }
        assert!((-0.51..=0.51).contains(&min) && (-0.51..=0.51).contains(&max));
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn the_threshold_and_the_number_of_peaks_are_the_callers() {
    let path = scratch("options.wav");
    write_wav(&path, 1, 8000, &sine(440.0, 0.1, 8000, 8000));
    // -20 dBFS of sine (RMS -23 dBFS) is below -10 dBFS and above -30.
    let loud = InspectOptions {
        silence_threshold_dbfs: -10.0,
        peaks: 0,
    };
    let report = inspect(&path, &loud).unwrap();
    assert_eq!(report.silence_ratio, 1.0);
    assert!(report.per_channel[0].peaks.is_empty());
    let quiet = InspectOptions {
        silence_threshold_dbfs: -30.0,
        peaks: 7,
    };
    let report = inspect(&path, &quiet).unwrap();
    assert_eq!(report.silence_ratio, 0.0);
    assert_eq!(report.per_channel[0].peaks.len(), 7);
    assert_eq!(report.frames_per_peak, 8000usize.div_ceil(7) as u64);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_mono_16khz_l16_file_measures_at_its_own_rate() {
    let path = scratch("wideband.wav");
    write_wav(&path, 1, 16_000, &sine(1000.0, 0.5, 16_000, 24_000));
    let report = inspect(&path, &InspectOptions::default()).unwrap();
    assert_eq!(report.sample_rate, 16_000);
    assert_eq!(report.channels, 1);
    assert_eq!(report.frames, 24_000);
    assert_eq!(report.duration, Duration::from_millis(1500));
    assert_eq!(report.silence_ratio, 0.0);
    assert_eq!(report.per_channel[0].peaks.len(), 800);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_ulaw_wav_decodes_through_g711() {
    // FreeSWITCH can record PCMU as it is: format tag 7, an 18-byte fmt chunk and a fact chunk.
    let samples = sine(440.0, 0.5, 8000, 4000);
    let data: Vec<u8> = samples
        .iter()
        .map(|&s| switchyard_media::g711::linear_to_ulaw(s))
        .collect();
    let mut file = Vec::new();
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&(4 + 26 + 12 + 8 + data.len() as u32).to_le_bytes());
    file.extend_from_slice(b"WAVEfmt ");
    file.extend_from_slice(&18u32.to_le_bytes());
    file.extend_from_slice(&7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(&8000u32.to_le_bytes());
    file.extend_from_slice(&8000u32.to_le_bytes());
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(&8u16.to_le_bytes());
    file.extend_from_slice(&0u16.to_le_bytes());
    file.extend_from_slice(b"fact");
    file.extend_from_slice(&4u32.to_le_bytes());
    file.extend_from_slice(&(data.len() as u32).to_le_bytes());
    file.extend_from_slice(b"data");
    file.extend_from_slice(&(data.len() as u32).to_le_bytes());
    file.extend_from_slice(&data);

    let report = inspect_reader(Cursor::new(&file), &InspectOptions::default()).unwrap();
    assert_eq!(report.codec, "pcm_mulaw");
    assert_eq!(report.sample_rate, 8000);
    assert_eq!(report.channels, 1);
    assert_eq!(report.duration, Duration::from_millis(500));
    assert_eq!(report.bytes, file.len() as u64);
    let peak = report.per_channel[0].peak_dbfs.unwrap();
    assert!((peak - -6.0).abs() < 0.5, "{peak}");
}

#[test]
fn a_float_wav_decodes() {
    let path = scratch("float.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..800 {
        writer
            .write_sample(if i % 2 == 0 { 0.25f32 } else { f32::NAN })
            .unwrap();
    }
    writer.finalize().unwrap();
    let report = inspect(&path, &InspectOptions::default()).unwrap();
    assert_eq!(report.codec, "pcm_f32le");
    assert_eq!(report.frames, 800);
    // The NaNs count as nothing.
    assert!((report.per_channel[0].peak_dbfs.unwrap() - -12.04).abs() < 0.01);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn the_44_byte_file_freeswitch_leaves_is_empty() {
    let path = scratch("empty.wav");
    write_wav(&path, 2, 8000, &[]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 44);
    assert!(matches!(
        inspect(&path, &InspectOptions::default()),
        Err(MediaError::Empty)
    ));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_header_only_file_whose_lengths_were_never_written_is_empty() {
    // The writer died right after putting its header down (both lengths still 0).
    let file = header(2, 8000, 0, 0);
    assert!(matches!(
        inspect_reader(Cursor::new(&file), &InspectOptions::default()),
        Err(MediaError::Empty)
    ));
}

#[test]
fn audio_after_a_header_never_finalised_is_measured_and_reported_cut() {
    // The writer died before it first rewrote its header: the lengths are 0, 1 s is there.
    let mut file = header(1, 8000, 0, 0);
    file.extend_from_slice(&pcm_bytes(&sine(440.0, 0.5, 8000, 8000)));
    let Err(MediaError::Truncated { report, expected }) =
        inspect_reader(Cursor::new(&file), &InspectOptions::default())
    else {
        panic!("a cut recording");
    };
    assert_eq!(expected, None);
    assert_eq!(report.frames, 8000);
    assert_eq!(report.duration, Duration::from_secs(1));
    assert!(report.per_channel[0].peak_dbfs.unwrap() > -6.1);
}

#[test]
fn a_file_cut_in_its_data_chunk_keeps_every_whole_frame_before_the_cut() {
    let path = scratch("cut.wav");
    let left = sine(440.0, 0.5, 8000, 16_000);
    let right = sine(1000.0, 0.25, 8000, 16_000);
    write_wav(&path, 2, 8000, &interleave(&left, &right));
    // The header says 2 s; the file now holds 1 s, 100 frames and half a frame.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(44 + 4 * 8100 + 3).unwrap();
    drop(file);

    let error = inspect(&path, &InspectOptions::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the recording is cut short: 1.0125s decoded of 2s"
    );
    let MediaError::Truncated { report, expected } = error else {
        unreachable!()
    };
    assert_eq!(expected, Some(Duration::from_secs(2)));
    assert_eq!(report.frames, 8100);
    assert_eq!(report.channels, 2);
    assert_eq!(report.bytes, 44 + 4 * 8100 + 3);
    assert_eq!(report.silence_ratio, 0.0);
    // Every frame there is in the waveform: the last pair is the tone's.
    let last = *report.per_channel[0].peaks.last().unwrap();
    assert!(last.1 > 0.3, "{last:?}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_file_cut_right_after_its_header_is_cut_with_nothing_decoded() {
    let mut file = header(2, 8000, 36 + 32_000, 32_000);
    file.extend_from_slice(&[1, 2, 3]);
    let Err(MediaError::Truncated { report, expected }) =
        inspect_reader(Cursor::new(&file), &InspectOptions::default())
    else {
        panic!("a cut recording");
    };
    assert_eq!(report.frames, 0);
    assert_eq!(expected, Some(Duration::from_secs(1)));
}

#[test]
fn a_file_cut_inside_its_header_is_malformed() {
    let file = header(2, 8000, 36, 0);
    for len in [13, 20, 30, 40] {
        let result = inspect_reader(Cursor::new(&file[..len]), &InspectOptions::default());
        assert!(
            matches!(result, Err(MediaError::Malformed { .. })),
            "{len}: {result:?}"
        );
    }
}

#[test]
fn random_bytes_are_not_audio() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut bytes = vec![0u8; 4096];
    for byte in &mut bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    for len in [0, 1, 3, 4, 11, 12, 44, 4096] {
        assert!(
            matches!(
                inspect_reader(Cursor::new(&bytes[..len]), &InspectOptions::default()),
                Err(MediaError::NotAudio)
            ),
            "{len}"
        );
    }
}

#[test]
fn an_html_error_page_uploaded_instead_is_not_audio() {
    let page = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n\
        <body><h1>Bad Gateway</h1><p>RIFF WAVE upstream failed</p></body></html>\n";
    let error = inspect_reader(Cursor::new(&page[..]), &InspectOptions::default()).unwrap_err();
    assert!(matches!(error, MediaError::NotAudio), "{error:?}");
    assert_eq!(
        error.to_string(),
        "not a recording: the file does not start with a WAV header"
    );
}

#[test]
fn an_encoding_outside_pcm_and_g711_is_unsupported() {
    // GSM 6.10 (format tag 0x31), which some FreeSWITCH setups record to.
    let mut file = header(1, 8000, 36 + 65, 65);
    file[20..22].copy_from_slice(&0x31u16.to_le_bytes());
    file.extend_from_slice(&[0; 65]);
    let error = inspect_reader(Cursor::new(&file), &InspectOptions::default()).unwrap_err();
    let MediaError::Unsupported { encoding } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(encoding, "WAVE format 0x0031");
}

#[test]
fn ima_adpcm_is_unsupported_by_name() {
    let mut file = Vec::new();
    file.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
    file.extend_from_slice(&20u32.to_le_bytes());
    file.extend_from_slice(&0x11u16.to_le_bytes()); // WAVE_FORMAT_IMA_ADPCM
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(&8000u32.to_le_bytes());
    file.extend_from_slice(&4055u32.to_le_bytes());
    file.extend_from_slice(&256u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&505u16.to_le_bytes());
    file.extend_from_slice(b"data");
    file.extend_from_slice(&256u32.to_le_bytes());
    file.extend_from_slice(&[0; 256]);
    let error = inspect_reader(Cursor::new(&file), &InspectOptions::default()).unwrap_err();
    assert_eq!(error.to_string(), "unsupported encoding: adpcm_ima_wav");
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let path = scratch("absent.wav");
    let error = inspect(&path, &InspectOptions::default()).unwrap_err();
    let MediaError::RecordingIo {
        path: Some(named),
        source,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(named, &path);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_wav_sink_file_inspects_to_the_duration_the_sink_reported() {
    let path = scratch("sink.wav");
    let mut sink = WavSink::create(&path, 2, 8000, Duration::from_secs(1)).unwrap();
    let block = interleave(&sine(440.0, 0.5, 8000, 160), &sine(1000.0, 0.5, 8000, 160));
    for k in 0..123u64 {
        sink.write(&Pcm {
            start: 160 * k,
            channels: 2,
            sample_rate: 8000,
            samples: &block,
        })
        .unwrap();
    }
    let summary = sink.finish().unwrap();
    let report = inspect(&path, &InspectOptions::default()).unwrap();
    assert_eq!(report.duration, summary.duration);
    assert_eq!(report.frames, summary.frames);
    assert_eq!(report.channels, summary.channels);
    assert_eq!(report.sample_rate, summary.sample_rate);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_wav_sink_that_died_after_a_flush_inspects_as_playable_up_to_the_flush() {
    let path = scratch("sink-crash.wav");
    let mut sink = WavSink::create(&path, 2, 8000, Duration::from_secs(1)).unwrap();
    let block = vec![1000i16; 2 * 160];
    // 1.5 s of audio: the header was last rewritten at 1.0 s.
    for k in 0..75u64 {
        sink.write(&Pcm {
            start: 160 * k,
            channels: 2,
            sample_rate: 8000,
            samples: &block,
        })
        .unwrap();
    }
    // The process dies: no finalisation, no destructor.
    std::mem::forget(sink);
    let report = inspect(&path, &InspectOptions::default()).unwrap();
    assert_eq!(report.duration, Duration::from_secs(1));
    assert_eq!(report.frames, 8000);
    std::fs::remove_file(path).unwrap();
}

/// The process's resident memory and its high-water mark, in KiB (Linux).
fn memory_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .trim()
            .trim_end_matches(" kB")
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[test]
fn a_long_recording_is_measured_in_bounded_memory() {
    // 20 minutes of 8 kHz stereo: 38 MB on disk, 77 MB as f32 samples held at once.
    let frames: u32 = 20 * 60 * 8000;
    let path = scratch("long.wav");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        file.write_all(&header(2, 8000, 36 + 4 * frames, 4 * frames))
            .unwrap();
        let second = pcm_bytes(&interleave(
            &sine(440.0, 0.5, 8000, 8000),
            &sine(1000.0, 0.25, 8000, 8000),
        ));
        for _ in 0..frames / 8000 {
            file.write_all(&second).unwrap();
        }
    }
    let Some((rss_before, _)) = memory_kib() else {
        return; // not Linux: nothing to measure with
    };
    let report = inspect(&path, &InspectOptions::default()).unwrap();
    let (_, high_water) = memory_kib().unwrap();
    assert_eq!(report.frames, u64::from(frames));
    assert_eq!(report.duration, Duration::from_secs(20 * 60));
    assert_eq!(report.per_channel[0].peaks.len(), 800);
    assert!(
        high_water.saturating_sub(rss_before) < 16 * 1024,
        "grew by {} KiB",
        high_water - rss_before
    );
    std::fs::remove_file(path).unwrap();
}
