//! Contact import: a CSV request body, streamed, never whole in memory.
//!
//! ```text
//!  request body (Bytes stream, counted: > MAX_BYTES stops it)
//!    -> StreamReader -> SyncIoBridge (a blocking Read over the async stream)
//!    -> csv::Reader in spawn_blocking: header, then each row normalised (E.164, zone, fields)
//!    -> bounded channel of row batches (BATCH rows, CHANNEL batches in flight)
//!    -> the caller stores each batch in one transaction and hands pending contacts on
//! ```
//!
//! Bad rows are counted and the first [`MAX_ERRORS`] listed with their line numbers; they
//! never stop the good ones. At [`MAX_ROWS`] data rows the parser stops reading: what came
//! before is kept and the caller answers 413 with the report.

pub mod zones;

use std::io::Read;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use phonenumber::country;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::ToSchema;

use crate::store::ContactInput;

/// Data rows one import accepts at most.
pub const MAX_ROWS: u64 = 1_000_000;
/// Request body bytes at most (about 128 bytes a row for a million rows).
pub const MAX_BYTES: u64 = 128 * 1024 * 1024;
/// Rows per batch (one store transaction each).
pub const BATCH: usize = 1_000;
/// Batches parsed ahead of the store at most.
const CHANNEL: usize = 4;
/// Errors listed in the report at most (all are counted).
pub const MAX_ERRORS: usize = 1_000;
/// Columns in the file at most, and characters in one extra field.
pub const MAX_COLUMNS: usize = 100;
pub const MAX_FIELD_CHARS: usize = 1_000;

/// Options of one import (query parameters of the route).
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Region for numbers written without `+` (ISO 3166 alpha-2, e.g. `US`).
    pub default_region: Option<country::Id>,
}

/// Why a row was not imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// 1-based line of the file (the header is line 1).
    pub line: u64,
    pub reason: String,
    /// The column at fault, when one is.
    pub field: Option<String>,
}

/// What the parser saw, besides the rows it sent.
#[derive(Clone, Debug, Default)]
pub struct ParseSummary {
    /// Rows read (good and bad), header excluded.
    pub rows: u64,
    pub rejected: u64,
    pub errors: Vec<RowError>,
    /// Stopped at [`MAX_ROWS`] with more to read.
    pub too_many_rows: bool,
    /// Stopped at [`MAX_BYTES`].
    pub too_many_bytes: bool,
    /// The file could not be read at all (no header, no phone column, broken stream).
    pub fatal: Option<RowError>,
}

impl ParseSummary {
    fn reject(&mut self, line: u64, reason: impl Into<String>, field: Option<&str>) {
        self.rejected += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(RowError {
                line,
                reason: reason.into(),
                field: field.map(str::to_owned),
            });
        }
    }
}

/// A region code from a query parameter.
pub fn region(code: &str) -> Option<country::Id> {
    code.trim().to_ascii_uppercase().parse().ok()
}

/// The number in E.164, or why not.
pub fn normalise(
    raw: &str,
    region: Option<country::Id>,
) -> Result<phonenumber::PhoneNumber, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("no number");
    }
    if raw.len() > 64 {
        return Err("not a phone number");
    }
    let pn = phonenumber::parse(region, raw).map_err(|_| {
        if region.is_none() && !raw.starts_with('+') {
            "not a phone number in international form (+...); give default_region"
        } else {
            "not a phone number"
        }
    })?;
    if !phonenumber::is_valid(&pn) {
        return Err("not a valid phone number");
    }
    Ok(pn)
}

pub fn e164(pn: &phonenumber::PhoneNumber) -> String {
    pn.format().mode(phonenumber::Mode::E164).to_string()
}

/// The zone a number most likely rings in (see [`zones`] for the approximation).
pub fn derive_zone(pn: &phonenumber::PhoneNumber) -> Option<&'static str> {
    if pn.code().value() == 1 {
        let area = pn.national().value() / 10_000_000;
        if let Some(z) = u16::try_from(area).ok().and_then(zones::nanp_zone) {
            return Some(z);
        }
        // Toll-free and other non-geographic NANP codes: no zone, whatever the country says.
        if pn
            .country()
            .id()
            .is_none_or(|c| matches!(c.as_ref(), "US" | "CA"))
        {
            return None;
        }
    }
    pn.country()
        .id()
        .and_then(|c| zones::country_zone(c.as_ref()))
}

/// Wraps a body stream: counts bytes and fails the stream past `limit` (an error the parser
/// reports as `too_many_bytes`).
fn limited<S, E>(body: S, limit: u64) -> impl Stream<Item = std::io::Result<Bytes>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let mut seen = 0u64;
    body.map_err(|e| std::io::Error::other(e.to_string()))
        .map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            if seen > limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    "body over the limit",
                ));
            }
            Ok(chunk)
        })
}

/// Starts parsing `body` on a blocking thread. Batches of normalised rows come out of the
/// receiver (each with the rows it stands for); the summary comes out of the handle once the
/// receiver is drained. Dropping the receiver stops the parser.
pub fn parse<S, E>(
    body: S,
    opts: ImportOptions,
) -> (mpsc::Receiver<Vec<ContactInput>>, JoinHandle<ParseSummary>)
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL);
    let reader = StreamReader::new(Box::pin(limited(body, MAX_BYTES)));
    // Created here, on the runtime: the bridge blocks on this runtime's handle.
    let bridge = SyncIoBridge::new(reader);
    let handle = tokio::task::spawn_blocking(move || parse_blocking(bridge, opts, tx));
    (rx, handle)
}

fn io_fatal(e: &csv::Error, summary: &mut ParseSummary) {
    if let csv::ErrorKind::Io(io) = e.kind()
        && io.kind() == std::io::ErrorKind::FileTooLarge
    {
        summary.too_many_bytes = true;
        return;
    }
    summary.fatal = Some(RowError {
        line: e.position().map_or(0, |p| p.line()),
        reason: format!("the file could not be read: {e}"),
        field: None,
    });
}

/// The line breaks of the input as the csv reader pulls it: the byte offset after each
/// break (and whether its line was empty), so that a record's line is 1 + the breaks before
/// its first byte.
///
/// The csv crate's own `Position::line` skips blank lines (two blank lines made line 5 read
/// as line 3), and a record's `Position::byte` is where the reader started looking for it,
/// before any blank lines it skipped: those are counted here too. A break is `\n`, or a `\r`
/// not followed by `\n` (CRLF counts once, from its CR). Offsets are dropped as soon as a record past them
/// is looked up, so the queue holds only the breaks in the reader's read-ahead (its buffer,
/// 8 KiB): bounded by that buffer, whatever the file's length.
#[derive(Debug, Default)]
struct LineBreaks {
    /// (offset after the break, the line it ends was empty)
    pending: std::collections::VecDeque<(u64, bool)>,
    counted: u64,
    read: u64,
    after_cr: bool,
    content: bool,
}

impl LineBreaks {
    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.after_cr && b != b'\n' {
                // A lone CR ended the previous line, at the byte before this one.
                self.pending.push_back((self.read, !self.content));
                self.content = false;
            }
            if b == b'\n' {
                // A CRLF ends its line at the CR: the csv reader stops a record there and
                // may start looking for the next one at the LF.
                let end = if self.after_cr {
                    self.read
                } else {
                    self.read + 1
                };
                self.pending.push_back((end, !self.content));
                self.content = false;
            } else if b != b'\r' {
                self.content = true;
            }
            self.after_cr = b == b'\r';
            self.read += 1;
        }
    }

    /// The 1-based line of a record the reader started looking for at byte `at` (offsets
    /// only grow): the breaks before it, then the empty lines it skipped.
    fn line_at(&mut self, at: u64) -> u64 {
        while self.pending.front().is_some_and(|&(end, _)| end <= at) {
            self.pending.pop_front();
            self.counted += 1;
        }
        while self.pending.front().is_some_and(|&(_, empty)| empty) {
            self.pending.pop_front();
            self.counted += 1;
        }
        self.counted + 1
    }
}

/// The input, with its line breaks noted as they are read.
struct Counting<R> {
    inner: R,
    breaks: std::rc::Rc<std::cell::RefCell<LineBreaks>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.breaks.borrow_mut().scan(&buf[..n]);
        Ok(n)
    }
}

fn parse_blocking<R: Read>(
    input: R,
    opts: ImportOptions,
    tx: mpsc::Sender<Vec<ContactInput>>,
) -> ParseSummary {
    let mut summary = ParseSummary::default();
    let breaks = std::rc::Rc::new(std::cell::RefCell::new(LineBreaks::default()));
    let line_of = |p: &csv::Position| breaks.borrow_mut().line_at(p.byte());
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(Counting {
            inner: input,
            breaks: breaks.clone(),
        });
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            io_fatal(&e, &mut summary);
            return summary;
        }
    };
    // Spreadsheets write a byte-order mark before the first header.
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    let find = |wanted: &[&str]| {
        names
            .iter()
            .position(|n| wanted.iter().any(|w| n.eq_ignore_ascii_case(w)))
    };
    let fatal = |reason: &str, field: &str| RowError {
        line: 1,
        reason: reason.to_owned(),
        field: Some(field.to_owned()),
    };
    if names.iter().all(String::is_empty) {
        summary.fatal = Some(fatal("a header row is required", "header"));
        return summary;
    }
    if names.len() > MAX_COLUMNS {
        summary.fatal = Some(fatal(&format!("at most {MAX_COLUMNS} columns"), "header"));
        return summary;
    }
    let Some(phone_col) = find(&["phone", "number"]) else {
        summary.fatal = Some(fatal(
            "the header needs a `phone` or `number` column",
            "phone",
        ));
        return summary;
    };
    let tz_col = find(&["timezone", "tz"]);
    let phone_name = names[phone_col].clone();
    let tz_name = tz_col.map(|c| names[c].clone());

    let mut batch = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        if summary.rows >= MAX_ROWS {
            // One more record means the file is over the limit.
            match rdr.read_record(&mut record) {
                Ok(true) => summary.too_many_rows = true,
                Ok(false) => {}
                Err(e) => io_fatal(&e, &mut summary),
            }
            break;
        }
        let line = line_of(rdr.position());
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, line_of);
                match e.kind() {
                    // The record is skipped; the reader carries on after it.
                    csv::ErrorKind::Utf8 { .. } => {
                        summary.rows += 1;
                        summary.reject(line, "not UTF-8", None);
                        continue;
                    }
                    _ => {
                        io_fatal(&e, &mut summary);
                        break;
                    }
                }
            }
        }
        summary.rows += 1;
        let line = record.position().map_or(line, line_of);
        if record.iter().all(str::is_empty) {
            // A blank line (or only commas) is not a contact and not an error worth listing.
            summary.rows -= 1;
            continue;
        }
        match row(&record, &names, phone_col, tz_col, &opts) {
            Ok(c) => {
                batch.push(c);
                if batch.len() >= BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.blocking_send(full).is_err() {
                        return summary; // the importer gave up
                    }
                }
            }
            Err((reason, col)) => {
                let field = match col {
                    Col::Phone => Some(phone_name.as_str()),
                    Col::Zone => tz_name.as_deref(),
                    Col::Other(i) => names.get(i).map(String::as_str),
                };
                summary.reject(line, reason, field);
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
    summary
}

enum Col {
    Phone,
    Zone,
    Other(usize),
}

fn row(
    record: &csv::StringRecord,
    names: &[String],
    phone_col: usize,
    tz_col: Option<usize>,
    opts: &ImportOptions,
) -> Result<ContactInput, (String, Col)> {
    let raw = record.get(phone_col).unwrap_or("");
    let pn = normalise(raw, opts.default_region).map_err(|r| (r.to_owned(), Col::Phone))?;
    let given = tz_col.and_then(|c| record.get(c)).filter(|z| !z.is_empty());
    let zone = match given {
        Some(z) => {
            if switchyard_engine::dialer::window::zone(z).is_none() {
                return Err((format!("unknown time zone {z:?}"), Col::Zone));
            }
            z.to_owned()
        }
        None => derive_zone(&pn)
            .ok_or_else(|| {
                (
                    "no time zone for this number: add a timezone column".to_owned(),
                    Col::Zone,
                )
            })?
            .to_owned(),
    };
    let mut fields = Map::new();
    for (i, v) in record.iter().enumerate() {
        if i == phone_col || Some(i) == tz_col || v.is_empty() {
            continue;
        }
        let Some(name) = names.get(i).filter(|n| !n.is_empty()) else {
            // A value under no header (a longer row): nowhere to keep it.
            return Err(("more values than header columns".to_owned(), Col::Other(i)));
        };
        if v.chars().count() > MAX_FIELD_CHARS || v.contains('\0') {
            return Err((
                format!("at most {MAX_FIELD_CHARS} characters, no NUL"),
                Col::Other(i),
            ));
        }
        fields.insert(name.clone(), Value::String(v.to_owned()));
    }
    Ok(ContactInput {
        number: e164(&pn),
        zone,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_to_e164_with_a_default_region() {
        let us = region("us");
        assert_eq!(
            e164(&normalise("(201) 555-0123", us).unwrap()),
            "+12015550123"
        );
        assert_eq!(
            e164(&normalise("+44 20 7946 0018", us).unwrap()),
            "+442079460018"
        );
        assert!(normalise("(201) 555-0123", None).is_err());
        assert!(normalise("hello", us).is_err());
        assert!(normalise("", us).is_err());
    }

    fn rejected_lines(csv: &str) -> Vec<u64> {
        let (tx, _rx) = mpsc::channel(CHANNEL * 4);
        let opts = ImportOptions {
            default_region: region("US"),
        };
        let errors = parse_blocking(csv.as_bytes(), opts, tx).errors;
        errors.iter().map(|e| e.line).collect()
    }

    #[test]
    fn error_lines_count_blank_lines_and_crlf_as_the_file_has_them() {
        assert_eq!(rejected_lines("phone\n+12015550123\n\n\nbad\n"), [5]);
        assert_eq!(
            rejected_lines("phone\r\n+12015550123\r\n\r\n\r\nbad\r\nworse\r\n"),
            [5, 6]
        );
        assert_eq!(rejected_lines("phone\rbad\r\rbad\r"), [2, 4]);
        // A quoted field spanning lines: the next row's line is the file's.
        assert_eq!(
            rejected_lines("phone,note\n+12015550123,\"a\nb\"\n\nbad,x\n"),
            [5]
        );
    }

    #[test]
    fn zones_derive_from_area_codes_and_countries() {
        let us = region("US");
        let z = |n: &str| derive_zone(&normalise(n, us).unwrap());
        assert_eq!(z("+1 312 555 0142"), Some("America/Chicago"));
        assert_eq!(z("+1 415 555 0142"), Some("America/Los_Angeles"));
        assert_eq!(z("+44 20 7946 0018"), Some("Europe/London"));
        assert_eq!(z("+1 800 555 0199"), None);
    }
}
