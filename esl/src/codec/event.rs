//! Events in FreeSWITCH's three serialisations: plain, JSON and XML.
//!
//! Whatever the wire format, an [`Event`] ends up as the same ordered header list plus an
//! optional body, so the plain and JSON captures of the same events compare equal. Conventions
//! that make the three agree:
//! - an event body (BACKGROUND_JOB results, API output) is [`Event::body`]; its length header
//!   `Content-Length` is kept as an ordinary header, in the place each format puts it;
//! - multi-value headers are `ARRAY::a|:b` values in every format (JSON arrays are joined).

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::headers::{Encoding, Headers, HeadersBuilder, join_array, split_array};
use super::percent;
use crate::error::EslError;

/// The serialisation an event arrived in (or is to be sent in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EventFormat {
    #[default]
    Plain,
    Json,
    Xml,
}

impl EventFormat {
    /// The word used in `event <format> ...` commands.
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::Plain => "plain",
            EventFormat::Json => "json",
            EventFormat::Xml => "xml",
        }
    }

    /// The `Content-Type` of events in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            EventFormat::Plain => "text/event-plain",
            EventFormat::Json => "text/event-json",
            EventFormat::Xml => "text/event-xml",
        }
    }
}

impl std::str::FromStr for EventFormat {
    type Err = EslError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "plain" => Ok(EventFormat::Plain),
            "json" => Ok(EventFormat::Json),
            "xml" => Ok(EventFormat::Xml),
            other => Err(EslError::InvalidCommand {
                reason: format!("unknown event format {other:?} (plain, json or xml)"),
            }),
        }
    }
}

/// One FreeSWITCH event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    format: EventFormat,
    headers: Headers,
    body: Option<Bytes>,
}

impl Event {
    /// An event built in code: `Event-Name` first, values taken as given (not encoded).
    pub fn new(name: &str) -> Self {
        Event {
            format: EventFormat::Plain,
            headers: Headers::from_pairs([("Event-Name", name)]),
            body: None,
        }
    }

    /// An event from already-decoded header pairs and an optional body.
    pub fn from_parts(format: EventFormat, headers: Headers, body: Option<Bytes>) -> Self {
        Event {
            format,
            headers,
            body,
        }
    }

    /// The format it arrived in.
    pub fn format(&self) -> EventFormat {
        self.format
    }

    /// All headers in wire order.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body (BACKGROUND_JOB result, API output...), if any.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// Decoded value of a header (first match, ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers.get_str(name)
    }

    /// `Event-Name`.
    pub fn name(&self) -> Option<Cow<'_, str>> {
        self.header("Event-Name")
    }
    /// `Event-Subclass` (for CUSTOM events, e.g. `callcenter::info`).
    pub fn subclass(&self) -> Option<Cow<'_, str>> {
        self.header("Event-Subclass")
    }
    /// `Unique-ID`: the channel the event is about.
    pub fn unique_id(&self) -> Option<Cow<'_, str>> {
        self.header("Unique-ID")
    }
    /// `Core-UUID`: changes when FreeSWITCH restarts.
    pub fn core_uuid(&self) -> Option<Cow<'_, str>> {
        self.header("Core-UUID")
    }
    /// `Event-Sequence`: per-switch counter; resets when FreeSWITCH restarts.
    pub fn sequence(&self) -> Option<u64> {
        self.header("Event-Sequence")?.trim().parse().ok()
    }
    /// `Job-UUID` of a BACKGROUND_JOB.
    pub fn job_uuid(&self) -> Option<Cow<'_, str>> {
        self.header("Job-UUID")
    }
    /// `Application` of CHANNEL_EXECUTE(_COMPLETE).
    pub fn application(&self) -> Option<Cow<'_, str>> {
        self.header("Application")
    }
    /// `Application-UUID`: the `Event-UUID` we gave the `sendmsg execute`.
    pub fn application_uuid(&self) -> Option<Cow<'_, str>> {
        self.header("Application-UUID")
    }
    /// `Application-Response` of CHANNEL_EXECUTE_COMPLETE.
    pub fn application_response(&self) -> Option<Cow<'_, str>> {
        self.header("Application-Response")
    }
    /// `Hangup-Cause` (NORMAL_CLEARING, USER_BUSY...).
    pub fn hangup_cause(&self) -> Option<Cow<'_, str>> {
        self.header("Hangup-Cause")
    }
    /// A header of the caller profile: `caller("Caller-ID-Number")` reads
    /// `Caller-Caller-ID-Number` (FreeSWITCH prefixes the profile's own field names). The
    /// outbound `connect` reply (CHANNEL_DATA) prefixes them `Channel-` instead, so read it with
    /// `header("Channel-Caller-ID-Number")`.
    pub fn caller(&self, field: &str) -> Option<Cow<'_, str>> {
        self.headers.get_prefixed("Caller-", field)
    }
    /// A channel variable: `variable("sip_call_id")` reads `variable_sip_call_id`.
    /// `_undef_` reads as `None`.
    pub fn variable(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers
            .get_prefixed("variable_", name)
            .filter(|v| v.as_bytes() != super::headers::UNDEF)
    }
    /// The body as text (lossy), e.g. `+OK <uuid>\n` of a BACKGROUND_JOB.
    pub fn body_str(&self) -> Option<Cow<'_, str>> {
        self.body.as_deref().map(String::from_utf8_lossy)
    }

    // ---- parsing -------------------------------------------------------------------------

    /// Parses the body of a `text/event-plain` message.
    pub fn parse_plain(data: Bytes) -> Result<Self, EslError> {
        let total = data.len();
        let (headers, after_blank) = Headers::parse_until_blank(data)?;
        // A body follows the empty line only when the event has one (BACKGROUND_JOB, API...).
        let body = match after_blank.filter(|&start| start < total) {
            None => None,
            Some(start) => {
                let len = content_length(&headers, "plain")?;
                let end = start
                    .checked_add(len)
                    .filter(|&e| e <= total)
                    .ok_or_else(|| EslError::MalformedEvent {
                        format: "plain",
                        reason: format!(
                            "inner Content-Length {len} exceeds the {} bytes left",
                            total - start
                        ),
                    })?;
                Some(headers.buf().slice(start..end))
            }
        };
        Ok(Event {
            format: EventFormat::Plain,
            headers,
            body,
        })
    }

    /// Parses the body of a `text/event-json` message held in `data`. FreeSWITCH's usual flat
    /// objects of plain strings are indexed in place; anything else goes through serde_json.
    pub fn parse_json_bytes(data: Bytes) -> Result<Self, EslError> {
        match super::json_fast::parse(&data) {
            Some((headers, body)) => Ok(Event {
                format: EventFormat::Json,
                headers,
                body,
            }),
            None => Self::parse_json(&data),
        }
    }

    /// Parses the body of a `text/event-json` message (always through serde_json).
    pub fn parse_json(data: &[u8]) -> Result<Self, EslError> {
        let mut de = serde_json::Deserializer::from_slice(data);
        let (headers, body) = JsonEventSeed
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| EslError::MalformedEvent {
                format: "json",
                reason: e.to_string(),
            })?;
        Ok(Event {
            format: EventFormat::Json,
            headers,
            body,
        })
    }

    /// Parses the body of a `text/event-xml` message.
    pub fn parse_xml(data: &[u8]) -> Result<Self, EslError> {
        super::xml::parse_event(data).map(|(headers, body)| Event {
            format: EventFormat::Xml,
            headers,
            body,
        })
    }

    // ---- serialising ---------------------------------------------------------------------

    /// The event body in `format`, as FreeSWITCH writes it (without the outer
    /// `Content-Length`/`Content-Type` block).
    pub fn serialize(&self, format: EventFormat) -> Vec<u8> {
        match format {
            EventFormat::Plain => self.serialize_plain(),
            EventFormat::Json => self.serialize_json(),
            EventFormat::Xml => super::xml::serialize_event(self),
        }
    }

    /// Headers other than the body's own `Content-Length`, which each format writes itself.
    pub(crate) fn headers_without_length(&self) -> impl Iterator<Item = super::Header<'_>> {
        let has_body = self.body.is_some();
        self.headers
            .iter()
            .filter(move |h| !(has_body && h.name_bytes().eq_ignore_ascii_case(b"Content-Length")))
    }

    fn serialize_plain(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.headers.len() * 48 + 16);
        for h in self.headers_without_length() {
            out.extend_from_slice(h.name_bytes());
            out.extend_from_slice(b": ");
            percent::encode_into(&h.value(), &mut out);
            out.push(b'\n');
        }
        match &self.body {
            Some(body) => {
                out.extend_from_slice(format!("Content-Length: {}\n\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            None => out.push(b'\n'),
        }
        out
    }

    /// JSON as FreeSWITCH's cJSON writes it: wire order kept, duplicate names kept.
    fn serialize_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.headers.len() * 48 + 16);
        let mut w = JsonObjectWriter::new(&mut out);
        for h in self.headers_without_length() {
            let v = h.value();
            if v.starts_with(super::headers::ARRAY_PREFIX) {
                w.array(h.name_bytes(), &split_array(&v));
            } else {
                w.string(h.name_bytes(), &v);
            }
        }
        if let Some(body) = &self.body {
            w.string(b"Content-Length", body.len().to_string().as_bytes());
            w.string(b"_body", body);
        }
        w.finish();
        out
    }

    /// The event in FreeSWITCH's own JSON layout, as text: a flat object of decoded values in
    /// wire order (duplicates kept), multi-value headers as arrays of strings, the body under
    /// `_body`. Bytes that are not UTF-8 are replaced, since JSON cannot carry them.
    pub fn to_json_string(&self) -> String {
        let mut out = Vec::with_capacity(self.headers.len() * 48 + 16);
        let mut w = JsonObjectWriter::new(&mut out);
        for h in self.headers.iter() {
            let v = h.value();
            if v.starts_with(super::headers::ARRAY_PREFIX) {
                w.array(h.name_bytes(), &split_array(&v));
            } else {
                w.string(h.name_bytes(), &v);
            }
        }
        if let Some(body) = &self.body {
            w.string(b"_body", body);
        }
        w.finish();
        // Every byte written went through `String::from_utf8_lossy`.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Writes one flat JSON object key by key, so order and duplicates survive.
struct JsonObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> JsonObjectWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObjectWriter { out, first: true }
    }
    fn key(&mut self, name: &[u8]) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.text(name);
        self.out.push(b':');
    }
    fn text(&mut self, v: &[u8]) {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, &String::from_utf8_lossy(v));
    }
    fn string(&mut self, name: &[u8], v: &[u8]) {
        self.key(name);
        self.text(v);
    }
    fn array(&mut self, name: &[u8], items: &[Vec<u8>]) {
        self.key(name);
        self.out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.text(item);
        }
        self.out.push(b']');
    }
    fn finish(self) {
        self.out.push(b'}');
    }
}

fn content_length(headers: &Headers, format: &'static str) -> Result<usize, EslError> {
    let value = headers
        .get("Content-Length")
        .ok_or_else(|| EslError::MalformedEvent {
            format,
            reason: "a body follows the headers but there is no Content-Length".into(),
        })?;
    parse_decimal(&value).ok_or_else(|| EslError::MalformedEvent {
        format,
        reason: format!(
            "inner Content-Length {:?} is not a number",
            String::from_utf8_lossy(&value)
        ),
    })
}

/// Parses a non-negative decimal with no sign, no spaces and at most 9 digits (16 MiB fits).
pub(crate) fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

// ---- JSON --------------------------------------------------------------------------------

struct JsonEventSeed;

impl<'de> DeserializeSeed<'de> for JsonEventSeed {
    type Value = (Headers, Option<Bytes>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(JsonEventVisitor)
    }
}

struct JsonEventVisitor;

impl<'de> Visitor<'de> for JsonEventVisitor {
    type Value = (Headers, Option<Bytes>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a flat JSON object of event headers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut b = HeadersBuilder::with_capacity(2048, 64);
        let mut body = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let value = map.next_value::<JsonValue<'de>>()?;
            if key.0 == "_body" {
                body = Some(Bytes::from(value.into_bytes()));
                continue;
            }
            match value {
                JsonValue::One(v) => b.push(key.0.as_bytes(), v.as_bytes(), Encoding::Literal),
                many => b.push(key.0.as_bytes(), &many.into_bytes(), Encoding::Literal),
            }
        }
        Ok((b.finish(), body))
    }
}

/// A string that borrows from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A header value in a JSON event: a string, an array of strings (multi-value header), or a
/// scalar that some modules emit unquoted.
enum JsonValue<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl JsonValue<'_> {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            JsonValue::One(s) => s.into_owned().into_bytes(),
            JsonValue::Many(items) => join_array(items.iter().map(|s| s.as_bytes())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for JsonValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonValue<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonValue::One(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonValue::One(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonValue::One(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(JsonValue::One(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JsonValue::One(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(JsonValue::One(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(JsonValue::One(Cow::Borrowed(if v {
                    "true"
                } else {
                    "false"
                })))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JsonValue::One(Cow::Borrowed("")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(Text(s)) = seq.next_element::<Text<'de>>()? {
                    items.push(s);
                }
                Ok(JsonValue::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_event_with_inner_body() {
        let raw = b"Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nJob-Command-Arg: a%20%26b\nContent-Length: 6\n\n+OK x\n";
        let e = Event::parse_plain(Bytes::from_static(raw)).unwrap();
        assert_eq!(e.name().unwrap(), "BACKGROUND_JOB");
        assert_eq!(e.job_uuid().unwrap(), "j1");
        assert_eq!(e.header("Job-Command-Arg").unwrap(), "a &b");
        assert_eq!(e.body().unwrap().as_ref(), b"+OK x\n");
    }

    #[test]
    fn plain_event_inner_length_past_the_end_is_an_error() {
        let raw = b"Event-Name: X\nContent-Length: 60\n\nshort";
        assert!(matches!(
            Event::parse_plain(Bytes::from_static(raw)),
            Err(EslError::MalformedEvent { .. })
        ));
    }

    #[test]
    fn json_event_keeps_order_arrays_and_body() {
        let raw = br#"{"Event-Name":"CUSTOM","Event-Subclass":"callcenter::info","X":["a","b"],"Content-Length":"3","_body":"hi\n"}"#;
        let e = Event::parse_json(raw).unwrap();
        assert_eq!(e.subclass().unwrap(), "callcenter::info");
        let x = e.headers().find(b"X").unwrap();
        assert_eq!(x.values(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(e.body_str().unwrap(), "hi\n");
        assert_eq!(e.header("Content-Length").unwrap(), "3");
    }

    #[test]
    fn json_event_that_is_not_an_object_is_an_error() {
        assert!(Event::parse_json(b"[1,2]").is_err());
        assert!(Event::parse_json(b"{\"a\":{}}").is_err());
        assert!(Event::parse_json(b"{\"a\":\"b\"} trailing").is_err());
    }

    #[test]
    fn variable_undef_reads_as_none() {
        let e = Event::parse_plain(Bytes::from_static(
            b"Event-Name: X\nvariable_a: _undef_\nvariable_b: 1\nCaller-Caller-ID-Number: 1000\n\n",
        ))
        .unwrap();
        assert_eq!(e.variable("a"), None);
        assert_eq!(e.variable("b").unwrap(), "1");
        assert_eq!(e.caller("Caller-ID-Number").unwrap(), "1000");
    }

    #[test]
    fn serialize_round_trips_in_every_format() {
        let mut b = HeadersBuilder::default();
        for (n, v) in [
            ("Event-Name", "BACKGROUND_JOB"),
            ("Job-Command-Arg", "loopback/7001 &park() 100% + <x>"),
            ("Multi", "ARRAY::a|:b"),
            ("Content-Length", "4"),
        ] {
            b.push(n.as_bytes(), v.as_bytes(), Encoding::Literal);
        }
        let e = Event::from_parts(
            EventFormat::Plain,
            b.finish(),
            Some(Bytes::from_static(b"ok\n\n")),
        );
        for f in [EventFormat::Plain, EventFormat::Json, EventFormat::Xml] {
            let wire = Bytes::from(e.serialize(f));
            let back = match f {
                EventFormat::Plain => Event::parse_plain(wire).unwrap(),
                EventFormat::Json => Event::parse_json(&wire).unwrap(),
                EventFormat::Xml => Event::parse_xml(&wire).unwrap(),
            };
            assert_eq!(back.headers(), e.headers(), "{f:?}");
            assert_eq!(back.body(), e.body(), "{f:?}");
        }
    }
}
