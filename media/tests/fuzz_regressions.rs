//! Inputs for the fuzz targets (media/fuzz), replayed with the very same checks
//! (`media/fuzz/src/lib.rs`, included by path), so the oracle itself is tested on every run.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod checks;

#[test]
fn empty_and_truncated_scripts_finish_cleanly() {
    checks::capture_ops(b"");
    checks::capture_ops(&[0x00]);
    checks::capture_ops(&[0x01, 1, 2]);
}

#[test]
fn a_shaped_stream_with_reordering_dtmf_and_a_pause_passes_the_oracle() {
    let mut script = Vec::new();
    for k in 0..200u8 {
        // 20 ms step (10 x 2 ms), shaped, caller; every 7th packet steps back (reordered).
        let seq_step: u8 = if k % 7 == 3 { 0xFE } else { 1 };
        let kind = if k % 13 == 5 { 0x08 } else { 0x00 }; // selector: PCMU or telephone-event
        script.extend_from_slice(&[(10 << 3) | 0x01, kind, seq_step, 0, 20, 160]);
        // The agent on its own SSRC slot, PCMA.
        script.extend_from_slice(&[0x04 | 0x01, 0x05, 1, 0, 20, 160]);
        if k == 50 || k == 120 {
            script.push(0x02);
        }
    }
    // Garbage on both legs.
    script.extend_from_slice(&[0x00, 3, 0x80, 0x00, 0x01, 0x04, 2, 0xFF, 0xFF]);
    checks::capture_ops(&script);
}

#[test]
fn datagrams_that_tease_the_parser_pass_the_oracle() {
    for datagram in [
        &[][..],
        &[0x80; 12][..],
        &[0xBF, 0xE5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1][..],
        &[0xA0, 101, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x80, 0, 2][..],
    ] {
        checks::parse_datagram(datagram);
    }
}

/// rtp_capture: a packet older by sequence number (a reordered one) whose timestamp lay 1.4 s
/// ahead of its arrival was placed there, so the recording ran on past where any audio can
/// land (`resync_after` beyond its arrival). Reordered packets are now held to the same bound
/// as the newest, and dropped as late beyond it.
#[test]
fn a_reordered_packet_from_the_far_future_does_not_stretch_the_recording() {
    checks::capture_ops(&[229, 255, 4, 229, 229, 229, 229, 255, 229, 5, 137, 4, 4, 4]);
}

/// ingest_wav: a fmt chunk of 32768 channels made symphonia's WAV parser multiply the channel
/// count by the sample width in 16 bits, a panic in debug builds. Channel counts past
/// `MAX_CHANNELS` are now refused before symphonia reads the chunk.
#[cfg(feature = "ingest")]
#[test]
fn a_fmt_chunk_with_32768_channels_is_refused_before_symphonia_reads_it() {
    let input = [
        0x52, 0x49, 0x46, 0x46, 0x6, 0x1, 0x0, 0x0, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20,
        0x10, 0x0, 0x0, 0x0, 0x1, 0x0, 0x0, 0x80, 0x1, 0x3e, 0x0, 0x0, 0x0, 0x7d, 0x0, 0x0, 0x2,
        0x0, 0x10, 0x0, 0x4c, 0x49, 0x53, 0x54, 0x12, 0x0, 0x0, 0x0, 0x49, 0x4e, 0x46, 0x4f, 0x49,
        0x4e, 0x41, 0x4d, 0x5, 0x0, 0x0, 0x0, 0x63, 0x61, 0x6c, 0xa5, 0x11, 0xe7, 0x70, 0x6, 0x46,
        0xec, 0x6d, 0x1, 0x7c, 0xf1, 0x42, 0xfc, 0x45, 0xf7, 0x80, 0xf7, 0x68, 0xfd, 0xae, 0xf3,
        0xa4, 0x3, 0x29, 0x29, 0x29, 0x29, 0x29, 0x29, 0x29, 0x29, 0x29, 0x0, 0x0, 0x0, 0x0, 0x0,
        0x63, 0x3d, 0xd6, 0xff, 0x4e, 0x46, 0x29, 0x6,
    ];
    checks::inspect_bytes(&input);
}

/// ingest_wav: seeds for the inspector's oracle (the fuzz corpus starts from the same shapes).
#[cfg(feature = "ingest")]
#[test]
fn recordings_whole_cut_unfinalised_and_foreign_pass_the_inspector_oracle() {
    let mut wav =
        b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0\x40\x1f\0\0\0\x7d\0\0\x04\0\x10\0data\0\0\0\0"
            .to_vec();
    checks::inspect_bytes(&wav);
    wav.extend((0..1001u16).flat_map(|i| i.to_le_bytes()));
    checks::inspect_bytes(&wav);
    wav[40..44].copy_from_slice(&4000u32.to_le_bytes());
    checks::inspect_bytes(&wav);
    wav[40..44].copy_from_slice(&400u32.to_le_bytes());
    checks::inspect_bytes(&wav);
    checks::inspect_bytes(b"<html><body>502 Bad Gateway</body></html>");
    checks::inspect_bytes(b"");
}

/// Found reading symphonia's WAV parser after the fuzz run: an extensible fmt chunk whose
/// channel mask names fewer channels than it counts, with the mask's top bit set, made its
/// mask repair shift a u32 by 32, a panic in debug builds. The mask is now rewritten to the
/// count's own before symphonia reads the chunk.
#[cfg(feature = "ingest")]
#[test]
fn an_extensible_fmt_chunk_whose_mask_disagrees_with_its_count_is_read_without_a_panic() {
    for (channels, mask) in [
        (2u16, 0x8000_0000u32),
        (32, 0),
        (3, 0xC000_0001),
        (1, u32::MAX),
    ] {
        let mut file = Vec::new();
        file.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        file.extend_from_slice(&40u32.to_le_bytes());
        file.extend_from_slice(&0xFFFEu16.to_le_bytes());
        file.extend_from_slice(&channels.to_le_bytes());
        file.extend_from_slice(&8000u32.to_le_bytes());
        file.extend_from_slice(&(16_000 * u32::from(channels)).to_le_bytes());
        file.extend_from_slice(&(2 * channels).to_le_bytes());
        file.extend_from_slice(&16u16.to_le_bytes());
        file.extend_from_slice(&22u16.to_le_bytes());
        file.extend_from_slice(&16u16.to_le_bytes());
        file.extend_from_slice(&mask.to_le_bytes());
        file.extend_from_slice(&[
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38,
            0x9b, 0x71,
        ]);
        file.extend_from_slice(b"data");
        file.extend_from_slice(&(8 * u32::from(channels)).to_le_bytes());
        file.extend(std::iter::repeat_n(0x11, 8 * usize::from(channels)));
        checks::inspect_bytes(&file);
    }
}
