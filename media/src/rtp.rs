//! RTP packets (RFC 3550) as the capture needs them, read with `rtp-rs`, and the RFC 4733
//! telephone-event payload.
//!
//! `rtp-rs` checks every length it reads against the buffer before handing out a reader
//! (header, CSRC list, extension, padding), so a parsed packet's accessors cannot panic; this
//! module only maps its errors onto the reasons the capture counts.

use rtp_rs::{RtpReader, RtpReaderError};

/// The header fields and payload of one RTP packet, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    /// Start of a talkspurt for audio; FreeSWITCH sets it on the first packet and again after
    /// a timestamp jump (`esl-captures/eavesdrop-recorder-leg.md`). Placement uses timestamps,
    /// so the capture does not need it.
    pub marker: bool,
    /// Without header extensions, CSRCs or padding.
    pub payload: &'a [u8],
}

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the 12-byte fixed header.
    TooShort,
    /// Not RTP version 2 (STUN, garbage, another protocol on the port).
    Version,
    /// The CSRC list or header extension runs past the end of the datagram.
    HeaderTruncated,
    /// The padding count is zero or longer than the packet.
    Padding,
    /// A header and nothing to play.
    EmptyPayload,
    /// A payload whose length does not fit its format (odd L16, telephone-event under 4 bytes).
    PayloadLength,
}

impl RtpPacket<'_> {
    /// Reads one datagram.
    pub fn parse(datagram: &[u8]) -> Result<RtpPacket<'_>, Malformed> {
        let reader = RtpReader::new(datagram).map_err(|e| match e {
            RtpReaderError::BufferTooShort(_) => Malformed::TooShort,
            RtpReaderError::UnsupportedVersion(_) => Malformed::Version,
            RtpReaderError::HeadersTruncated { .. } => Malformed::HeaderTruncated,
            RtpReaderError::PaddingLengthInvalid(_) => Malformed::Padding,
        })?;
        let payload = reader.payload();
        if payload.is_empty() {
            return Err(Malformed::EmptyPayload);
        }
        Ok(RtpPacket {
            ssrc: reader.ssrc(),
            sequence: reader.sequence_number().into(),
            timestamp: reader.timestamp(),
            payload_type: reader.payload_type(),
            marker: reader.mark(),
            payload,
        })
    }
}

/// One RFC 4733 named event (a DTMF key while `event` <= 15).
///
/// All packets of one event carry the event's start as their RTP timestamp; `duration` (in
/// timestamp units, from that start) grows with each update, and the last update has `end`
/// set and is sent three times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event of a telephone-event payload (RFC 2198 redundancy, which would put
    /// several in one packet, is not negotiated by FreeSWITCH's recorder legs).
    pub fn parse(payload: &[u8]) -> Result<Self, Malformed> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(Malformed::PayloadLength);
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The key this event stands for: 0-9, `*`, `#`, A-D (RFC 4733 §3.2); `None` for the
    /// other named events (flash, tones).
    pub fn digit(&self) -> Option<char> {
        match self.event {
            0..=9 => Some(char::from(b'0' + self.event)),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some(char::from(b'A' + self.event - 12)),
            _ => None,
        }
    }

    /// The four payload bytes (for tests and the fake switch).
    pub fn to_bytes(&self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d0,
            d1,
        ]
    }
}

/// Writes an RTP packet without CSRCs, extension or padding into `out` (cleared first): what
/// FreeSWITCH sends to a recorder leg. For tests, benchmarks and the fake switch.
pub fn write_packet(
    out: &mut Vec<u8>,
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) {
    out.clear();
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (payload_type & 0x7F));
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_fields_freeswitch_sends() {
        let mut wire = Vec::new();
        write_packet(&mut wire, 0, true, 44668, 160, 0x9318_6c78, &[0xFF; 160]);
        let packet = RtpPacket::parse(&wire).unwrap();
        assert_eq!(packet.sequence, 44668);
        assert_eq!(packet.timestamp, 160);
        assert_eq!(packet.ssrc, 0x9318_6c78);
        assert_eq!(packet.payload_type, 0);
        assert!(packet.marker);
        assert_eq!(packet.payload.len(), 160);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        // V=2, P=1, X=1, CC=1; one CSRC; an extension of one word; 3 bytes of padding.
        let mut wire = vec![0xB1, 0x08, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
        wire.extend_from_slice(&[1, 2, 3, 4]); // CSRC
        wire.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]); // extension header + 1 word
        wire.extend_from_slice(&[0xD5, 0xD5]); // payload
        wire.extend_from_slice(&[0, 0, 3]); // padding, count included
        let packet = RtpPacket::parse(&wire).unwrap();
        assert_eq!(packet.payload, &[0xD5, 0xD5]);
        assert_eq!(packet.payload_type, 8);
    }

    #[test]
    fn names_what_is_wrong_with_a_bad_datagram() {
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(Malformed::TooShort));
        assert_eq!(RtpPacket::parse(&[0x40; 20]), Err(Malformed::Version));
        // CC=15 needs 60 bytes of CSRCs.
        let mut wire = vec![0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(&[0; 8]);
        assert_eq!(RtpPacket::parse(&wire), Err(Malformed::HeaderTruncated));
        // Padding count larger than the packet.
        let mut wire = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 200];
        assert_eq!(RtpPacket::parse(&wire), Err(Malformed::Padding));
        wire.truncate(12);
        wire[0] = 0x80;
        assert_eq!(RtpPacket::parse(&wire), Err(Malformed::EmptyPayload));
    }

    #[test]
    fn reads_a_telephone_event_and_its_digit() {
        let event = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1280,
        };
        let parsed = TelephoneEvent::parse(&event.to_bytes()).unwrap();
        assert_eq!(parsed, event);
        assert_eq!(parsed.digit(), Some('#'));
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(Malformed::PayloadLength)
        );
        let digits: String = (0..=16)
            .filter_map(|event| {
                TelephoneEvent {
                    event,
                    end: false,
                    volume: 0,
                    duration: 0,
                }
                .digit()
            })
            .collect();
        assert_eq!(digits, "0123456789*#ABCD");
    }
}
