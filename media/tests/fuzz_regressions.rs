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
