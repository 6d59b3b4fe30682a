//! Reading `show channels as json` (after a reconnect, and for the stray sweep): the uuid of
//! every row, and the call it belongs to.
//!
//! FreeSWITCH answers `{"row_count":N,"rows":[{"uuid":"...",...},...]}`, or
//! `{"row_count": 0}` when idle. A small scanner (bounded depth, never panics) is all this
//! needs; anything unexpected is an error and the resync waits for the next reconnect.

use crate::io::LegId;

/// The legs a `show channels as json` body lists. Rows whose uuid is not a uuid are skipped.
pub(crate) fn live_legs(body: &[u8]) -> Result<Vec<LegId>, String> {
    Ok(channel_rows(body)?.into_iter().map(|r| r.uuid).collect())
}

/// One row of `show channels`: the channel and the call it is part of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChannelRow {
    pub uuid: LegId,
    /// FreeSWITCH's `call_uuid` column: the channel's own uuid until a bridge, then (for both
    /// legs) the A-leg's call uuid, back to its own at the unbridge (switch_core_sqldb.c).
    pub call_uuid: Option<LegId>,
    /// The `callstate` column says the channel was answered (`ACTIVE`, or `HELD` on hold).
    pub answered: bool,
    /// The `cid_num` column (the caller id number), bounded.
    pub cid_num: String,
}

/// Longest caller id number kept from a listing (FreeSWITCH's are short; this bounds a
/// hostile one).
const MAX_CID: usize = 64;

/// Every row of a `show channels as json` body with a uuid that is a uuid.
pub(crate) fn channel_rows(body: &[u8]) -> Result<Vec<ChannelRow>, String> {
    let mut p = Scanner { s: body, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        let head = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        return Err(format!("not a JSON object: {head:?}"));
    }
    let mut rows = Vec::new();
    p.object(0, &mut |p, key| {
        if key == b"rows" {
            p.array(1, &mut |p| {
                let (mut uuid, mut call_uuid) = (None, None);
                let (mut answered, mut cid_num) = (false, String::new());
                p.object(2, &mut |p, key| {
                    if !matches!(key, b"uuid" | b"call_uuid" | b"callstate" | b"cid_num") {
                        return p.skip(3);
                    }
                    if p.peek() != Some(b'"') {
                        return p.skip(3);
                    }
                    let v = p.string()?;
                    let text = std::str::from_utf8(&v).ok();
                    match key {
                        b"uuid" => uuid = text.and_then(LegId::parse),
                        b"call_uuid" => call_uuid = text.and_then(LegId::parse),
                        b"callstate" => answered = matches!(text, Some("ACTIVE" | "HELD")),
                        _ => {
                            cid_num = text.unwrap_or_default().chars().take(MAX_CID).collect();
                        }
                    }
                    Ok(())
                })?;
                if let Some(uuid) = uuid {
                    rows.push(ChannelRow {
                        uuid,
                        call_uuid,
                        answered,
                        cid_num,
                    });
                }
                Ok(())
            })
        } else {
            p.skip(1)
        }
    })?;
    Ok(rows)
}

const MAX_DEPTH: usize = 32;

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

type Res = Result<(), String>;

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Res {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", b as char, self.i))
        }
    }

    /// `{ "key": value, ... }`; `member` must consume the value.
    fn object(&mut self, depth: usize, member: &mut dyn FnMut(&mut Self, &[u8]) -> Res) -> Res {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.expect(b':')?;
            self.ws();
            member(self, &key)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(format!("expected , or }} at byte {}", self.i)),
            }
        }
    }

    /// `[ value, ... ]`; `element` must consume the value.
    fn array(&mut self, depth: usize, element: &mut dyn FnMut(&mut Self) -> Res) -> Res {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            element(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(format!("expected , or ] at byte {}", self.i)),
            }
        }
    }

    /// A string's bytes with the simple escapes undone (`\uXXXX` is kept as is: uuids and
    /// keys never need it).
    fn string(&mut self) -> Result<Vec<u8>, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err("unterminated escape".into());
                    };
                    self.i += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'b' => 8,
                        b'f' => 12,
                        b'u' => {
                            out.extend_from_slice(b"\\u");
                            continue;
                        }
                        other => other,
                    });
                }
                other => out.push(other),
            }
        }
    }

    fn skip(&mut self, depth: usize) -> Res {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(depth + 1, &mut |p, _| p.skip(depth + 1)),
            Some(b'[') => self.array(depth + 1, &mut |p| p.skip(depth + 1)),
            Some(_) => {
                // Numbers, true, false, null.
                let start = self.i;
                while matches!(self.peek(), Some(c) if !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                {
                    self.i += 1;
                }
                if self.i == start {
                    Err(format!("empty value at byte {start}"))
                } else {
                    Ok(())
                }
            }
            None => Err("unexpected end".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_row_uuid_and_nothing_else() {
        let body = br#"{"row_count":2,"rows":[
            {"uuid":"0b4e4b9c-8a5e-4c8f-9d3c-2a4f5e6d7c8b","direction":"inbound","name":"a \"uuid\":\"x","call_uuid":"11112222-3333-4444-5555-666677778888","n":[1,{"x":null}]},
            {"direction":"outbound","uuid":"11112222-3333-4444-5555-666677778888","created_epoch":"1"}]}"#;
        let legs = live_legs(body).unwrap();
        assert_eq!(
            legs,
            [
                LegId::parse("0b4e4b9c-8a5e-4c8f-9d3c-2a4f5e6d7c8b").unwrap(),
                LegId::parse("11112222-3333-4444-5555-666677778888").unwrap()
            ]
        );
    }

    #[test]
    fn rows_carry_their_call_uuid_when_it_is_a_uuid() {
        let a = "0b4e4b9c-8a5e-4c8f-9d3c-2a4f5e6d7c8b";
        let b = "11112222-3333-4444-5555-666677778888";
        let body = format!(
            r#"{{"row_count":2,"rows":[{{"call_uuid":"{a}","uuid":"{b}","callstate":"ACTIVE","cid_num":"5551234"}},{{"uuid":"{a}","call_uuid":"","callstate":"RINGING"}}]}}"#
        );
        let rows = channel_rows(body.as_bytes()).unwrap();
        let (a, b) = (LegId::parse(a).unwrap(), LegId::parse(b).unwrap());
        assert_eq!(
            rows,
            [
                ChannelRow {
                    uuid: b,
                    call_uuid: Some(a),
                    answered: true,
                    cid_num: "5551234".into(),
                },
                ChannelRow {
                    uuid: a,
                    call_uuid: None,
                    answered: false,
                    cid_num: String::new(),
                }
            ]
        );
    }

    #[test]
    fn an_idle_switch_has_no_rows_and_errors_are_errors() {
        assert_eq!(live_legs(b"{\"row_count\": 0}\n").unwrap(), []);
        assert!(live_legs(b"-ERR no reply\n").is_err());
        assert!(live_legs(b"{\"rows\":[{\"uuid\":\"abc").is_err());
        let deep = "[".repeat(10_000);
        assert!(live_legs(format!("{{\"rows\":{deep}").as_bytes()).is_err());
        assert!(live_legs(format!("{{\"other\":{deep}").as_bytes()).is_err());
    }
}
