//! SDP offer -> answer for a receive-only audio leg (RFC 3264).
//!
//! Only what a recorder leg needs is read: the connection address, the first audio `m=` line,
//! its `rtpmap`/`fmtp`/`ptime` and direction attributes. The offerer's order of preference is
//! kept: the first of PCMU, PCMA or L16 (at the capture's rate, mono) it lists is chosen, and
//! telephone-event at the same rate is accepted under the payload type it offered. Every
//! other media line is refused with port 0, as RFC 3264 §6 asks.
//!
//! (The SDP crates looked at, ezk-sdp-types among them, parse whole sessions into owned trees;
//! what is needed here is a dozen lines, read with bounds and without allocation per line.)

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use crate::config::{PayloadFormat, PayloadMap};

/// Lines read from one SDP body at most: an offer from FreeSWITCH has about a dozen.
const MAX_LINES: usize = 256;
/// Payload types read from one `m=` line at most.
const MAX_FORMATS: usize = 32;

/// Which way media flows, from the offerer's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
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
    /// The SDP answer's body, without the `o=` version (which the dialog owns).
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

#[derive(Debug)]
struct Media<'a> {
    port: u16,
    proto: &'a str,
    formats: Vec<u8>,
    connection: Option<IpAddr>,
    rtpmaps: Vec<(u8, &'a str)>,
    fmtps: Vec<(u8, &'a str)>,
    ptime: Option<&'a str>,
    direction: Option<Direction>,
}

/// Answers `offer` for a capture running at `sample_rate`.
pub fn negotiate(offer: &[u8], sample_rate: u32) -> Result<Negotiated, Refusal> {
    let text = std::str::from_utf8(offer).map_err(|_| Refusal::Malformed)?;
    let mut session_connection = None;
    let mut session_direction = None;
    let mut media: Vec<Media<'_>> = Vec::new();
    for line in text.lines().take(MAX_LINES) {
        let line = line.trim_end();
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match (kind, media.last_mut()) {
            ("m", _) => media.push(parse_media(value)?),
            ("c", None) => session_connection = parse_connection(value),
            ("c", Some(m)) => m.connection = parse_connection(value),
            ("a", current) => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                let direction = match name {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                match current {
                    None => session_direction = direction.or(session_direction),
                    Some(m) => {
                        if direction.is_some() {
                            m.direction = direction;
                        }
                        let pt_and = || {
                            let (pt, rest) = arg.split_once(' ')?;
                            Some((pt.parse::<u8>().ok()?, rest.trim()))
                        };
                        match name {
                            "rtpmap" => m.rtpmaps.extend(pt_and()),
                            "fmtp" => m.fmtps.extend(pt_and()),
                            "ptime" => m.ptime = Some(arg.trim()),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let index = media
        .iter()
        .position(|m| m.port != 0 && m.proto == "RTP/AVP" && !m.formats.is_empty())
        .ok_or(Refusal::NoAudio)?;
    let chosen = &media[index];
    let ip = chosen
        .connection
        .or(session_connection)
        .ok_or(Refusal::NoConnection)?;
    let direction = chosen
        .direction
        .or(session_direction)
        .unwrap_or(Direction::SendRecv);

    let format_of = |pt: u8| -> Option<PayloadFormat> {
        let rtpmap = chosen.rtpmaps.iter().find(|(p, _)| *p == pt).map(|(_, m)| *m);
        let Some(rtpmap) = rtpmap else {
            // Static types need no rtpmap (RFC 3551).
            return match pt {
                0 if sample_rate == 8000 => Some(PayloadFormat::Pcmu),
                8 if sample_rate == 8000 => Some(PayloadFormat::Pcma),
                _ => None,
            };
        };
        let mut parts = rtpmap.split('/');
        let name = parts.next()?.to_ascii_uppercase();
        let rate: u32 = parts.next()?.parse().ok()?;
        let channels = parts.next().unwrap_or("1");
        if rate != sample_rate || channels != "1" {
            return None;
        }
        match name.as_str() {
            "PCMU" => Some(PayloadFormat::Pcmu),
            "PCMA" => Some(PayloadFormat::Pcma),
            "L16" => Some(PayloadFormat::L16),
            "TELEPHONE-EVENT" => Some(PayloadFormat::TelephoneEvent),
            _ => None,
        }
    };
    let (audio_type, audio) = chosen
        .formats
        .iter()
        .find_map(|&pt| match format_of(pt) {
            Some(PayloadFormat::TelephoneEvent) | None => None,
            Some(format) => Some((pt, format)),
        })
        .ok_or(Refusal::NoCommonCodec)?;
    let telephone_event = chosen
        .formats
        .iter()
        .copied()
        .find(|&pt| format_of(pt) == Some(PayloadFormat::TelephoneEvent));

    // We never send, so the answer receives at most (RFC 3264 §6.1).
    let answer_direction = match direction {
        Direction::SendRecv | Direction::SendOnly => "recvonly",
        Direction::RecvOnly | Direction::Inactive => "inactive",
    };
    let mut answer_media = String::new();
    for (i, m) in media.iter().enumerate() {
        if i != index {
            // Refused stream: port 0, its first format echoed (RFC 3264 §6).
            let first = m.formats.first().copied().unwrap_or(0);
            let _ = write!(answer_media, "m=audio 0 {} {first}\r\n", m.proto);
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
        let _ = write!(answer_media, "a=rtpmap:{audio_type} {name}/{sample_rate}\r\n");
        if let Some(te) = telephone_event {
            let _ = write!(
                answer_media,
                "a=rtpmap:{te} telephone-event/{sample_rate}\r\n"
            );
            if let Some((_, fmtp)) = m.fmtps.iter().find(|(pt, _)| *pt == te) {
                let _ = write!(answer_media, "a=fmtp:{te} {fmtp}\r\n");
            }
        }
        if let Some(ptime) = m.ptime {
            let _ = write!(answer_media, "a=ptime:{ptime}\r\n");
        }
        let _ = write!(answer_media, "a={answer_direction}\r\n");
    }
    Ok(Negotiated {
        rtp_from: SocketAddr::new(ip, chosen.port),
        audio_type,
        audio,
        telephone_event,
        direction,
        answer_media,
    })
}

impl Negotiated {
    /// The payload types the capture decodes this leg with.
    pub fn payload_map(&self) -> PayloadMap {
        let map = PayloadMap::empty().with(self.audio_type, self.audio);
        match (map, self.telephone_event) {
            (Ok(map), Some(te)) => map
                .clone()
                .with(te, PayloadFormat::TelephoneEvent)
                .unwrap_or(map),
            (Ok(map), None) => map,
            // Types come from a parsed u8 and are checked below 128 on the m= line.
            (Err(_), _) => PayloadMap::empty(),
        }
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
            self.answer_media.replace("{port}", &local.port().to_string())
        )
    }
}

fn parse_media(value: &str) -> Result<Media<'_>, Refusal> {
    let mut fields = value.split_ascii_whitespace();
    let kind = fields.next().ok_or(Refusal::Malformed)?;
    // `port/count` is allowed (RFC 4566); a recorder takes the first port.
    let port = fields.next().ok_or(Refusal::Malformed)?;
    let port: u16 = port
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or(Refusal::Malformed)?;
    let proto = fields.next().ok_or(Refusal::Malformed)?;
    let formats = fields
        .take(MAX_FORMATS)
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|&pt| pt < 128)
        .collect();
    Ok(Media {
        // A non-audio stream is refused like an unsupported one.
        port: if kind == "audio" { port } else { 0 },
        proto,
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        direction: None,
    })
}

fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut fields = value.split_ascii_whitespace();
    let (_net, _family, address) = (fields.next()?, fields.next()?, fields.next()?);
    // Multicast `addr/ttl` is no use to a recorder; the address alone is what is routed.
    address.split('/').next()?.parse().ok()
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
        assert!(answer.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{answer}");
        assert!(answer.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"));
        assert!(answer.ends_with("a=ptime:20\r\na=recvonly\r\n"), "{answer}");
        let map = negotiated.payload_map();
        assert_eq!(map.get(101), Some(PayloadFormat::TelephoneEvent));
        assert_eq!(map.get(8), None);
    }

    #[test]
    fn keeps_the_offerers_preference_and_dynamic_types() {
        let offer = "v=0\r\nc=IN IP4 10.1.2.3\r\nm=audio 4000 RTP/AVP 18 96 8 0 97\r\na=rtpmap:96 L16/8000\r\na=rtpmap:97 telephone-event/8000\r\na=sendonly\r\n";
        let negotiated = negotiate(offer.as_bytes(), 8000).unwrap();
        assert_eq!(
            (negotiated.audio_type, negotiated.audio),
            (96, PayloadFormat::L16)
        );
        assert_eq!(negotiated.telephone_event, Some(97));
        assert!(!negotiated.is_on_hold());
        let pcma = "v=0\r\nc=IN IP4 10.1.2.3\r\nm=audio 4000 RTP/AVP 8 0\r\na=inactive\r\n";
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
        let g729 = "v=0\r\nc=IN IP4 10.1.2.3\r\nm=audio 4000 RTP/AVP 18\r\n";
        assert_eq!(negotiate(g729.as_bytes(), 8000), Err(Refusal::NoCommonCodec));
        let no_c = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(negotiate(no_c.as_bytes(), 8000), Err(Refusal::NoConnection));
        let video = "v=0\r\nc=IN IP4 10.1.2.3\r\nm=video 4000 RTP/AVP 96\r\n";
        assert_eq!(negotiate(video.as_bytes(), 8000), Err(Refusal::NoAudio));
        assert_eq!(negotiate(b"m=audio x", 8000), Err(Refusal::Malformed));
    }
}
