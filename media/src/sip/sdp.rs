//! SDP offer -> answer for a receive-only audio leg (RFC 3264).
//!
//! The offer is parsed with `ezk-sdp-types` (the SIP types' sibling: same nom/bytes
//! dependencies). Of it, a recorder leg uses the connection address, the first audio `m=`
//! line, its `rtpmap`/`fmtp`/`ptime` and direction. The offerer's order of preference is
//! kept: the first of PCMU, PCMA or L16 (at the capture's rate, mono) it lists is chosen, and
//! telephone-event at the same rate is accepted under the payload type it offered. Every
//! other media line is refused with port 0, as RFC 3264 §6 asks.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sdp_types::{
    MediaDescription, MediaType, SessionDescription, TaggedAddress, TransportProtocol,
};

use crate::config::{PayloadFormat, PayloadMap};

/// Which way media flows, from the offerer's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl From<&ezk_sdp_types::Direction> for Direction {
    fn from(direction: &ezk_sdp_types::Direction) -> Self {
        match direction {
            ezk_sdp_types::Direction::SendRecv => Direction::SendRecv,
            ezk_sdp_types::Direction::SendOnly => Direction::SendOnly,
            ezk_sdp_types::Direction::RecvOnly => Direction::RecvOnly,
            ezk_sdp_types::Direction::Inactive => Direction::Inactive,
        }
    }
}

/// What was agreed for one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where the offerer sends RTP from (symmetric RTP): the recorder routes by it.
    pub rtp_from: SocketAddr,
    pub audio_type: u8,
    pub audio: PayloadFormat,
    pub telephone_event: Option<u8>,
    pub direction: Direction,
    /// The answer's media lines; `{port}` stands for the local RTP port.
    answer_media: String,
}

/// Why an offer cannot be answered (488 Not Acceptable Here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoAudio,
    NoConnection,
    NoCommonCodec,
    Malformed,
}

/// Answers `offer` for a capture running at `sample_rate`.
pub fn negotiate(offer: &[u8], sample_rate: u32) -> Result<Negotiated, Refusal> {
    let text =
        BytesStr::from_utf8_bytes(Bytes::copy_from_slice(offer)).map_err(|_| Refusal::Malformed)?;
    let session = SessionDescription::parse(&text).map_err(|_| Refusal::Malformed)?;
    let media = &session.media_descriptions;
    let index = media
        .iter()
        .position(|m| {
            m.media.media_type == MediaType::Audio
                && m.media.port != 0
                && m.media.proto == TransportProtocol::RtpAvp
                && !m.media.fmts.is_empty()
        })
        .ok_or(Refusal::NoAudio)?;
    let chosen = &media[index];
    let ip = chosen
        .connection
        .as_ref()
        .or(session.connection.as_ref())
        .and_then(|c| match &c.address {
            TaggedAddress::IP4(ip) => Some(IpAddr::V4(*ip)),
            TaggedAddress::IP6(ip) => Some(IpAddr::V6(*ip)),
            // A host name would need a resolver to route by; FreeSWITCH sends addresses.
            TaggedAddress::IP4FQDN(_) | TaggedAddress::IP6FQDN(_) => None,
        })
        .ok_or(Refusal::NoConnection)?;
    // The parser defaults an absent attribute to sendrecv, so a media-level sendrecv
    // defers to the session's.
    let direction = match Direction::from(&chosen.direction) {
        Direction::SendRecv => Direction::from(&session.direction),
        explicit => explicit,
    };

    let (audio_type, audio) = chosen
        .media
        .fmts
        .iter()
        .filter(|&&pt| pt < 128)
        .find_map(|&pt| match format_of(chosen, pt, sample_rate) {
            Some(PayloadFormat::TelephoneEvent) | None => None,
            Some(format) => Some((pt, format)),
        })
        .ok_or(Refusal::NoCommonCodec)?;
    let telephone_event = chosen
        .media
        .fmts
        .iter()
        .copied()
        .filter(|&pt| pt < 128)
        .find(|&pt| format_of(chosen, pt, sample_rate) == Some(PayloadFormat::TelephoneEvent));

    // We never send, so the answer receives at most (RFC 3264 §6.1).
    let answer_direction = match direction {
        Direction::SendRecv | Direction::SendOnly => "recvonly",
        Direction::RecvOnly | Direction::Inactive => "inactive",
    };
    let mut answer_media = String::new();
    for (i, m) in media.iter().enumerate() {
        if i != index {
            // Refused stream: port 0, its first format echoed (RFC 3264 §6).
            let first = m.media.fmts.first().copied().unwrap_or(0);
            let _ = write!(
                answer_media,
                "m={} 0 {} {first}\r\n",
                m.media.media_type, m.media.proto
            );
            continue;
        }
        let _ = write!(answer_media, "m=audio {{port}} RTP/AVP {audio_type}");
        if let Some(te) = telephone_event {
            let _ = write!(answer_media, " {te}");
        }
        answer_media.push_str("\r\n");
        let name = match audio {
            PayloadFormat::Pcmu => "PCMU",
            PayloadFormat::Pcma => "PCMA",
            _ => "L16",
        };
        let _ = write!(
            answer_media,
            "a=rtpmap:{audio_type} {name}/{sample_rate}\r\n"
        );
        if let Some(te) = telephone_event {
            let _ = write!(
                answer_media,
                "a=rtpmap:{te} telephone-event/{sample_rate}\r\n"
            );
            if let Some(fmtp) = m.fmtp.iter().find(|f| f.format == te) {
                let _ = write!(answer_media, "a=fmtp:{te} {}\r\n", fmtp.params);
            }
        }
        let ptime = m.attributes.iter().find(|a| a.name == "ptime");
        if let Some(ptime) = ptime.and_then(|a| a.value.as_ref()) {
            let _ = write!(answer_media, "a=ptime:{ptime}\r\n");
        }
        let _ = write!(answer_media, "a={answer_direction}\r\n");
    }
    Ok(Negotiated {
        rtp_from: SocketAddr::new(ip, chosen.media.port),
        audio_type,
        audio,
        telephone_event,
        direction,
        answer_media,
    })
}

/// What payload type `pt` of `media` carries, if the capture decodes it.
fn format_of(media: &MediaDescription, pt: u8, sample_rate: u32) -> Option<PayloadFormat> {
    let Some(rtpmap) = media.rtpmap.iter().find(|r| r.payload == pt) else {
        // Static types need no rtpmap (RFC 3551).
        return match pt {
            0 if sample_rate == 8000 => Some(PayloadFormat::Pcmu),
            8 if sample_rate == 8000 => Some(PayloadFormat::Pcma),
            _ => None,
        };
    };
    let mono = rtpmap
        .params
        .as_ref()
        .is_none_or(|channels| channels.as_str() == "1");
    if rtpmap.clock_rate != sample_rate || !mono {
        return None;
    }
    match rtpmap.encoding.to_ascii_uppercase().as_str() {
        "PCMU" => Some(PayloadFormat::Pcmu),
        "PCMA" => Some(PayloadFormat::Pcma),
        "L16" => Some(PayloadFormat::L16),
        "TELEPHONE-EVENT" => Some(PayloadFormat::TelephoneEvent),
        _ => None,
    }
}

impl Negotiated {
    /// The payload types the capture decodes this leg with.
    pub fn payload_map(&self) -> PayloadMap {
        let mut map = PayloadMap::empty();
        // `negotiate` only picks types below 128, which `with` accepts.
        if let Ok(with_audio) = map.clone().with(self.audio_type, self.audio) {
            map = with_audio;
        }
        if let Some(te) = self.telephone_event
            && let Ok(with_events) = map.clone().with(te, PayloadFormat::TelephoneEvent)
        {
            map = with_events;
        }
        map
    }

    /// Whether the offerer said it sends nothing (hold): RTP is then not expected.
    pub fn is_on_hold(&self) -> bool {
        matches!(self.direction, Direction::RecvOnly | Direction::Inactive)
            || self.rtp_from.ip().is_unspecified()
    }

    /// The SDP answer, receiving on `local`.
    pub fn answer(&self, local: SocketAddr, session_id: u64, version: u64) -> String {
        let family = if local.is_ipv4() { "IP4" } else { "IP6" };
        let ip = local.ip();
        format!(
            "v=0\r\no=switchyard {session_id} {version} IN {family} {ip}\r\ns=switchyard recorder\r\nc=IN {family} {ip}\r\nt=0 0\r\n{}",
            self.answer_media
                .replace("{port}", &local.port().to_string())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offer FreeSWITCH 1.10 sent to `rec-a` (eavesdrop-recorder-leg.udp.bin).
    const FREESWITCH_OFFER: &str = "v=0\r\no=FreeSWITCH 1796502966 1796502967 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30586 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";

    #[test]
    fn answers_freeswitchs_offer_with_pcmu_telephone_event_and_recvonly() {
        let negotiated = negotiate(FREESWITCH_OFFER.as_bytes(), 8000).unwrap();
        assert_eq!(negotiated.rtp_from, "127.0.0.1:30586".parse().unwrap());
        assert_eq!(
            (negotiated.audio_type, negotiated.audio),
            (0, PayloadFormat::Pcmu)
        );
        assert_eq!(negotiated.telephone_event, Some(101));
        let answer = negotiated.answer("127.0.0.1:40000".parse().unwrap(), 9, 1);
        assert!(
            answer.contains("m=audio 40000 RTP/AVP 0 101\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"));
        assert!(answer.ends_with("a=ptime:20\r\na=recvonly\r\n"), "{answer}");
        let map = negotiated.payload_map();
        assert_eq!(map.get(101), Some(PayloadFormat::TelephoneEvent));
        assert_eq!(map.get(8), None);
    }

    #[test]
    fn keeps_the_offerers_preference_and_dynamic_types() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 96 8 0 97\r\na=rtpmap:96 L16/8000\r\na=rtpmap:97 telephone-event/8000\r\na=sendonly\r\n";
        let negotiated = negotiate(offer.as_bytes(), 8000).unwrap();
        assert_eq!(
            (negotiated.audio_type, negotiated.audio),
            (96, PayloadFormat::L16)
        );
        assert_eq!(negotiated.telephone_event, Some(97));
        assert!(!negotiated.is_on_hold());
        let pcma = "v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0\r\na=inactive\r\n";
        let negotiated = negotiate(pcma.as_bytes(), 8000).unwrap();
        assert_eq!(negotiated.audio, PayloadFormat::Pcma);
        assert!(negotiated.is_on_hold());
        assert!(
            negotiated
                .answer("127.0.0.1:1".parse().unwrap(), 1, 2)
                .ends_with("a=inactive\r\n")
        );
    }

    #[test]
    fn refuses_offers_without_a_codec_it_decodes_or_without_an_address() {
        let g729 = "v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n";
        assert_eq!(
            negotiate(g729.as_bytes(), 8000),
            Err(Refusal::NoCommonCodec)
        );
        let no_c = "v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(negotiate(no_c.as_bytes(), 8000), Err(Refusal::NoConnection));
        let video = "v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n";
        assert_eq!(negotiate(video.as_bytes(), 8000), Err(Refusal::NoAudio));
        assert_eq!(negotiate(b"m=audio x", 8000), Err(Refusal::Malformed));
    }
}
