//! `POST /v1/analytics/export`: a tenant's history as CSV, streamed.
//!
//! ```text
//! validate the body (kind, range, filters)        -> 422 naming the field
//! audit the export, read and encode the first page -> JSON error if the store fails
//! answer 200 text/csv: header + first page, then the pump's pages as they come
//! pump task: page after page (store::export) -> CSV bytes -> bounded channel -> body
//! ```
//!
//! Kinds (one row each):
//! - `calls`: a call that ended and arrived in the range, oldest first;
//! - `agents`: an agent's 15-minute interval starting in the range (the engine's
//!   `AgentFigures`), per agent, then by time;
//! - `queue_intervals`: a queue's interval (the engine's `QueueFigures`), per queue, then by time.
//!
//! Memory is bounded whatever the range: one page ([`EXPORT_PAGE_ROWS`] rows) is read and
//! encoded at a time, and at most [`CHUNKS_AHEAD`] encoded pages wait for a slow client; the
//! pump waits when they do (and holds no database connection while it waits). A client that
//! goes away closes the channel and the pump stops at its next page.
//!
//! Errors before the first byte are JSON errors with their field. A failure after the head was
//! sent (the database going away mid-export) is logged and ends the body with an error: the
//! chunked transfer is cut without its last chunk, so the client sees an incomplete transfer,
//! never a file that merely looks shorter.
//!
//! Times: each is written twice, as RFC 3339 UTC with milliseconds (`2026-12-01T09:15:00.000Z`)
//! and as unix milliseconds (`*_ms`). Durations are seconds (`*_s`), ratios are 0..1, and an
//! empty cell is a figure with no denominator (no answered call, no ASA). Ids are the API's
//! (`crate::ids`), as `/v1/queues` and `/v1/agents` show them.
//!
//! CSV injection: a spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula,
//! and caller numbers are whatever the caller's network sent. Text cells starting with `=`,
//! `@`, a tab or a carriage return get a leading `'` (OWASP's advice); so do those starting
//! with `+` or `-` unless the rest is only digits, spaces and `-().` (a phone number such as
//! `+1 (555) 010-0199` stays as it is: it can compute at most a number, never call a function
//! or another program). Numbers, ids and times are written by us and never need it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, SUPERVISORS, audit};
use crate::http::{ApiError, ApiJson, Auth, require_role, require_tenant};
use crate::ids::{IdCodec, IdKind};
use crate::model::TenantId;
use crate::store::{
    CallRow, CallsAfter, EXPORT_PAGE_ROWS, ExportCalls, ExportIntervals, ExportScope, IntervalRow,
    IntervalsAfter, Store, StoreError,
};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

/// The longest range one export covers: a year, leap day included. Longer exports are made
/// of several (the file of a year of calls is already hundreds of megabytes).
pub const MAX_RANGE: Duration = Duration::from_secs(366 * 24 * 3600);

/// Encoded pages that may wait for the client: enough to keep the socket busy while the
/// next page is read, little enough (a few hundred kilobytes) that a stalled client costs
/// nothing much.
pub const CHUNKS_AHEAD: usize = 4;

/// What to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    /// One row per call that ended (arrived in the range).
    Calls,
    /// One row per agent per 15-minute interval (started in the range).
    Agents,
    /// One row per queue per 15-minute interval (started in the range).
    QueueIntervals,
}

impl ExportKind {
    fn as_str(self) -> &'static str {
        match self {
            ExportKind::Calls => "calls",
            ExportKind::Agents => "agents",
            ExportKind::QueueIntervals => "queue_intervals",
        }
    }
}

/// The export asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExportRequest {
    kind: ExportKind,
    /// Start of the range, included: RFC 3339 (`2026-12-01T00:00:00Z`) or unix milliseconds.
    #[schema(value_type = String, format = DateTime, example = "2026-12-01T00:00:00Z")]
    from: TimeArg,
    /// End of the range, excluded (at most 366 days after `from`): RFC 3339 or unix
    /// milliseconds.
    #[schema(value_type = String, format = DateTime, example = "2026-12-08T00:00:00Z")]
    to: TimeArg,
    /// Only this queue: the calls whose last queue it was (`calls`), or its intervals
    /// (`queue_intervals`). Not for `agents`.
    queue: Option<i64>,
    /// Only this agent: the calls it took (`calls`), or its intervals (`agents`). Not for
    /// `queue_intervals`.
    agent: Option<i64>,
}

/// A point in time from the body: RFC 3339 text or unix milliseconds, within what the time
/// library can write back (years -9999..=9999).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TimeArg(jiff::Timestamp);

impl<'de> Deserialize<'de> for TimeArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TimeArg, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = TimeArg;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 time (2026-12-01T00:00:00Z) or unix milliseconds")
            }

            fn visit_i64<E: serde::de::Error>(self, ms: i64) -> Result<TimeArg, E> {
                jiff::Timestamp::from_millisecond(ms)
                    .map(TimeArg)
                    .map_err(|_| E::custom("unix milliseconds out of range"))
            }

            fn visit_u64<E: serde::de::Error>(self, ms: u64) -> Result<TimeArg, E> {
                let ms =
                    i64::try_from(ms).map_err(|_| E::custom("unix milliseconds out of range"))?;
                self.visit_i64(ms)
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TimeArg, E> {
                text.parse::<jiff::Timestamp>().map(TimeArg).map_err(|_| {
                    E::custom(
                        "not an RFC 3339 time with an offset (2026-12-01T00:00:00Z, \
                         2026-12-01T00:00:00+01:00)",
                    )
                })
            }
        }
        d.deserialize_any(Visit)
    }
}

impl TimeArg {
    fn ms(self) -> i64 {
        self.0.as_millisecond()
    }
}

/// A CSV file of the tenant's history over a range.
///
/// Streamed as it is read: the file is never held whole, so a year of calls starts arriving at
/// once and costs the server a few pages of memory. An error before the first byte is a JSON
/// error naming its field; a failure after that cuts the transfer short (no final chunk), so a
/// complete download is a complete file. Times are RFC 3339 UTC and unix milliseconds; ids are
/// the API's. Admin and supervisor keys; every export is written to the audit log.
#[utoipa::path(
    post,
    path = "/v1/analytics/export",
    tag = "analytics",
    operation_id = "analytics_export",
    request_body = ExportRequest,
    responses(
        (status = 200, description = "The CSV file (header row first), streamed", content_type = "text/csv", body = String),
        (status = 422, description = "`kind` unknown, `from` or `to` not a time, `to` not after `from` or more than 366 days after it, `queue` or `agent` not one of the tenant's or not a filter of this kind (named in `field`)", body = crate::openapi::ErrorBody),
    ),
)]
async fn export(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<ExportRequest>,
) -> Result<Response, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let mut export = checked(&st, tenant, &req).await?;
    let detail = json!({
        "kind": req.kind.as_str(),
        "from_ms": req.from.ms(),
        "to_ms": req.to.ms(),
        "queue": req.queue,
        "agent": req.agent,
    });
    st.rt
        .store
        .insert_audit(&audit(
            &p,
            Some(tenant),
            "analytics.export",
            "export",
            req.kind.as_str(),
            detail,
        ))
        .await?;
    let first = export.next_chunk(&st.rt.store).await?;
    let mut head = export.header()?;
    if let Some(first) = first {
        head.extend_from_slice(&first);
    }
    let file = format!(
        "attachment; filename=\"{}-{}-{}.csv\"",
        req.kind.as_str(),
        req.from.ms(),
        req.to.ms()
    );
    let body = csv_body(st.rt.store.clone(), export, Bytes::from(head));
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&file) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The export the request asks for, or the 422 naming the field at fault.
async fn checked(st: &AppState, tenant: TenantId, req: &ExportRequest) -> Result<Export, ApiError> {
    let (from_ms, to_ms) = (req.from.ms(), req.to.ms());
    if to_ms <= from_ms {
        return Err(ApiError::unprocessable("to", "must be after from"));
    }
    let longest = i64::try_from(MAX_RANGE.as_millis()).unwrap_or(i64::MAX);
    if to_ms - from_ms > longest {
        return Err(ApiError::unprocessable(
            "to",
            "the range may span at most 366 days: export a longer one in parts",
        ));
    }
    if req.kind == ExportKind::Agents && req.queue.is_some() {
        return Err(ApiError::unprocessable(
            "queue",
            "agents are exported per agent: filter them with agent",
        ));
    }
    if req.kind == ExportKind::QueueIntervals && req.agent.is_some() {
        return Err(ApiError::unprocessable(
            "agent",
            "queue intervals are exported per queue: filter them with queue",
        ));
    }
    let store = &st.rt.store;
    let ids = &st.rt.ids;
    let queue = match req.queue {
        None => None,
        Some(shown) => {
            let found = match ids.decode(IdKind::Queue, shown) {
                Some(id) => store.get_queue(tenant, id).await?.map(|q| q.id),
                None => None,
            };
            Some(found.ok_or_else(|| {
                ApiError::unprocessable("queue", format!("no queue {shown} of yours"))
            })?)
        }
    };
    let agent = match req.agent {
        None => None,
        Some(shown) => {
            let found = match ids.decode(IdKind::Agent, shown) {
                Some(id) => store.get_agent(tenant, id).await?.map(|a| a.id),
                None => None,
            };
            Some(found.ok_or_else(|| {
                ApiError::unprocessable("agent", format!("no agent {shown} of yours"))
            })?)
        }
    };
    let source = match req.kind {
        ExportKind::Calls => Source::Calls {
            filter: ExportCalls {
                from_ms,
                to_ms,
                queue_id: queue,
                agent_id: agent,
            },
            after: CallsAfter::start(from_ms),
        },
        ExportKind::Agents => Source::Intervals {
            filter: ExportIntervals {
                scope: ExportScope::Agent,
                from_ms,
                to_ms,
                scope_id: agent,
            },
            after: IntervalsAfter::start(),
        },
        ExportKind::QueueIntervals => Source::Intervals {
            filter: ExportIntervals {
                scope: ExportScope::Queue,
                from_ms,
                to_ms,
                scope_id: queue,
            },
            after: IntervalsAfter::start(),
        },
    };
    Ok(Export {
        tenant,
        ids: ShownIds::new(ids.clone()),
        source,
        done: false,
        rows: 0,
    })
}

/// The body: `head` (the header row and the first page), then the pages the pump sends.
fn csv_body(store: Store, export: Export, head: Bytes) -> Body {
    let rest = if export.done {
        None
    } else {
        let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
        tokio::spawn(pump(store, export, tx));
        Some(rx)
    };
    let head = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(head) });
    let rest = futures_util::stream::unfold(rest, |rx| async move {
        let mut rx = rx?;
        let item = rx.recv().await?;
        Some((item, Some(rx)))
    });
    Body::from_stream(head.chain(rest))
}

/// Reads and encodes the pages after the first into `tx` until the export is done, the client
/// has gone (the channel is closed), or the store fails (logged, and sent as the body's error).
async fn pump(store: Store, mut export: Export, tx: mpsc::Sender<Result<Bytes, std::io::Error>>) {
    loop {
        match export.next_chunk(&store).await {
            Ok(Some(chunk)) => {
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    tracing::debug!(rows = export.rows, "export stopped: the client went away");
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    kind = export.source.kind(),
                    rows = export.rows,
                    "export cut short: the transfer ends without its last chunk"
                );
                let _ = tx
                    .send(Err(std::io::Error::other("the export failed")))
                    .await;
                return;
            }
        }
    }
}

/// An export under way: where it is, and how its rows are written.
#[derive(Debug)]
struct Export {
    tenant: TenantId,
    ids: ShownIds,
    source: Source,
    /// The last page was short (or empty): nothing more to read.
    done: bool,
    /// Rows encoded so far (for the logs).
    rows: u64,
}

#[derive(Debug)]
enum Source {
    Calls {
        filter: ExportCalls,
        after: CallsAfter,
    },
    Intervals {
        filter: ExportIntervals,
        after: IntervalsAfter,
    },
}

impl Source {
    fn kind(&self) -> &'static str {
        match self {
            Source::Calls { .. } => "calls",
            Source::Intervals { filter, .. } => match filter.scope {
                ExportScope::Agent => "agents",
                ExportScope::Queue => "queue_intervals",
            },
        }
    }
}

/// Why a page could not be written.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encoding CSV: {0}")]
    Csv(#[from] csv::Error),
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> ApiError {
        match e {
            ExportError::Store(e) => e.into(),
            ExportError::Csv(e) => ApiError::internal(e),
        }
    }
}

impl Export {
    /// The header row.
    fn header(&self) -> Result<Vec<u8>, ExportError> {
        let names: Vec<&str> = match &self.source {
            Source::Calls { .. } => CALL_COLUMNS.to_vec(),
            Source::Intervals { filter, .. } => {
                let (scope, figures) = figure_columns(filter.scope);
                INTERVAL_COLUMNS
                    .iter()
                    .copied()
                    .chain([scope])
                    .chain(figures.iter().map(|(name, _)| *name))
                    .collect()
            }
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&names)?;
        finish(w)
    }

    /// The next page as CSV rows; None when there are no more.
    async fn next_chunk(&mut self, store: &Store) -> Result<Option<Vec<u8>>, ExportError> {
        if self.done {
            return Ok(None);
        }
        let mut w = csv::Writer::from_writer(Vec::with_capacity(64 * 1024));
        let n = match &mut self.source {
            Source::Calls { filter, after } => {
                let page = store
                    .export_calls(self.tenant, filter, after, EXPORT_PAGE_ROWS)
                    .await?;
                for c in &page {
                    w.write_record(call_record(&mut self.ids, c))?;
                }
                if let Some(last) = page.last() {
                    *after = CallsAfter::row(last);
                }
                page.len()
            }
            Source::Intervals { filter, after } => {
                let page = store
                    .export_intervals(self.tenant, filter, *after, EXPORT_PAGE_ROWS)
                    .await?;
                for r in &page {
                    w.write_record(interval_record(&mut self.ids, filter.scope, r))?;
                }
                if let Some(last) = page.last() {
                    *after = IntervalsAfter::row(last);
                }
                page.len()
            }
        };
        self.rows += n as u64;
        if (n as i64) < EXPORT_PAGE_ROWS {
            self.done = true;
        }
        if n == 0 {
            return Ok(None);
        }
        finish(w).map(Some)
    }
}

/// The most store ids [`ShownIds`] remembers per kind (a tenant's queues or agents; past it
/// the memory is cleared and refilled).
const MAX_REMEMBERED_IDS: usize = 10_000;

/// The API's ids of the queues and agents an export names, each encoded once: encoding is a
/// keyed permutation of eight SHA-256 rounds (`crate::ids`), and a million calls name the same
/// few queues and agents over and over.
#[derive(Debug)]
struct ShownIds {
    codec: IdCodec,
    queues: HashMap<i64, i64>,
    agents: HashMap<i64, i64>,
}

impl ShownIds {
    fn new(codec: IdCodec) -> ShownIds {
        ShownIds {
            codec,
            queues: HashMap::new(),
            agents: HashMap::new(),
        }
    }

    fn queue(&mut self, id: i64) -> i64 {
        Self::shown(&self.codec, &mut self.queues, IdKind::Queue, id)
    }

    fn agent(&mut self, id: i64) -> i64 {
        Self::shown(&self.codec, &mut self.agents, IdKind::Agent, id)
    }

    fn shown(codec: &IdCodec, known: &mut HashMap<i64, i64>, kind: IdKind, id: i64) -> i64 {
        if let Some(shown) = known.get(&id) {
            return *shown;
        }
        if known.len() >= MAX_REMEMBERED_IDS {
            known.clear();
        }
        let shown = codec.encode(kind, id);
        known.insert(id, shown);
        shown
    }
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, ExportError> {
    w.into_inner()
        .map_err(|e| ExportError::Csv(csv::Error::from(e.into_error())))
}

const CALL_COLUMNS: &[&str] = &[
    "id",
    "arrived_at",
    "arrived_at_ms",
    "queue",
    "queues",
    "agent",
    "caller",
    "outcome",
    "wait_s",
    "talk_s",
    "offers",
    "callback",
];

/// A call as a row of [`CALL_COLUMNS`]. `queues`: every queue it passed through, in order,
/// separated by spaces; `callback`: the leg of the callback it chose, if it did.
fn call_record(ids: &mut ShownIds, c: &CallRow) -> [String; 12] {
    [
        c.id.to_string(),
        rfc3339(c.arrived_at_ms),
        c.arrived_at_ms.to_string(),
        ids.queue(c.queue_id).to_string(),
        c.queues
            .iter()
            .map(|q| ids.queue(*q).to_string())
            .collect::<Vec<_>>()
            .join(" "),
        c.agent_id
            .map(|a| ids.agent(a).to_string())
            .unwrap_or_default(),
        safe_text(&c.caller_number).into_owned(),
        safe_text(&c.outcome).into_owned(),
        seconds(c.wait_ms),
        seconds(c.talk_ms),
        c.offers.to_string(),
        c.callback_leg.map(|l| l.to_string()).unwrap_or_default(),
    ]
}

const INTERVAL_COLUMNS: &[&str] = &[
    "interval_start",
    "interval_end",
    "interval_start_ms",
    "interval_end_ms",
];

/// (CSV column, JSON pointer into the stored figures) of the engine's `AgentFigures`.
const AGENT_FIGURES: &[(&str, &str)] = &[
    ("offered", "/offered"),
    ("accepted", "/accepted"),
    ("rejected", "/rejected"),
    ("no_answer", "/no_answer"),
    ("busy", "/busy"),
    ("failed", "/failed"),
    ("lost", "/lost"),
    ("answered", "/answered"),
    ("handled", "/handled"),
    ("talk_s", "/talk_s"),
    ("wrapup_s", "/wrapup_s"),
    ("handle_s", "/handle_s"),
    ("aht_s", "/aht_s"),
    ("occupancy", "/occupancy"),
    ("logged_out_s", "/state_time_s/logged_out"),
    ("available_s", "/state_time_s/available"),
    ("on_break_s", "/state_time_s/on_break"),
    ("reserved_s", "/state_time_s/reserved"),
    ("on_call_s", "/state_time_s/on_call"),
    ("wrap_up_s", "/state_time_s/wrap_up"),
];

/// (CSV column, JSON pointer into the stored figures) of the engine's `QueueFigures`.
const QUEUE_FIGURES: &[(&str, &str)] = &[
    ("offered", "/offered"),
    ("answered", "/answered"),
    ("answered_within_sl", "/answered_within_sl"),
    ("abandoned", "/abandoned"),
    ("short_abandoned", "/short_abandoned"),
    ("exited", "/exited_total"),
    ("exited_timeout", "/exited/timeout"),
    ("exited_no_agents", "/exited/no_agents"),
    ("exited_overflow", "/exited/overflow"),
    ("exited_voicemail", "/exited/voicemail"),
    ("exited_callback", "/exited/callback"),
    ("exited_dtmf", "/exited/dtmf"),
    ("exited_supervisor", "/exited/supervisor"),
    ("exited_other", "/exited/other"),
    ("service_level", "/service_level"),
    ("service_level_excl_short", "/service_level_excl_short"),
    ("asa_s", "/asa_s"),
    ("avg_abandon_wait_s", "/avg_abandon_wait_s"),
    ("abandon_rate", "/abandon_rate"),
    ("talk_s", "/talk_s"),
    ("wrapup_s", "/wrapup_s"),
    ("handled", "/handled"),
    ("handle_s", "/handle_s"),
    ("aht_s", "/aht_s"),
    ("occupancy", "/occupancy"),
];

/// The scope's id column and its figure columns.
fn figure_columns(scope: ExportScope) -> (&'static str, &'static [(&'static str, &'static str)]) {
    match scope {
        ExportScope::Agent => ("agent", AGENT_FIGURES),
        ExportScope::Queue => ("queue", QUEUE_FIGURES),
    }
}

/// An interval as a row: [`INTERVAL_COLUMNS`], the scope's id, its figures (empty where the
/// stored figures have no value, as for a ratio without a denominator).
fn interval_record(ids: &mut ShownIds, scope: ExportScope, r: &IntervalRow) -> Vec<String> {
    let (_, figures) = figure_columns(scope);
    let shown = match scope {
        ExportScope::Agent => ids.agent(r.scope.id()),
        ExportScope::Queue => ids.queue(r.scope.id()),
    };
    let mut row = Vec::with_capacity(INTERVAL_COLUMNS.len() + 1 + figures.len());
    row.extend([
        rfc3339(r.start_ms),
        rfc3339(r.end_ms),
        r.start_ms.to_string(),
        r.end_ms.to_string(),
        shown.to_string(),
    ]);
    row.extend(
        figures
            .iter()
            .map(|(_, pointer)| cell(r.figures.pointer(pointer))),
    );
    row
}

/// A figure as a cell: numbers as JSON writes them (never in exponent form for the values
/// figures hold), nothing for `null` or a figure the stored row does not have.
fn cell(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::String(s)) => safe_text(s).into_owned(),
        _ => String::new(),
    }
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds.
fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        // Only a row written with a nonsense time gets here: its `_ms` column still says it.
        Err(_) => String::new(),
    }
}

/// Milliseconds as seconds with three decimals, exactly (no float rounding).
fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// A text cell a spreadsheet will not run (see the module doc for the rule).
fn safe_text(s: &str) -> Cow<'_, str> {
    let mut chars = s.chars();
    let risky = match chars.next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !chars.all(|c| c.is_ascii_digit() || " -().".contains(c)),
        _ => false,
    };
    if risky {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_phone_numbers_kept() {
        for kept in [
            "+15550100199",
            "+1 (555) 010-0199",
            "-",
            "5550100",
            "anonymous",
            "",
        ] {
            assert_eq!(safe_text(kept), kept);
        }
        for risky in [
            "=HYPERLINK(\"http://x\")",
            "@SUM(A1)",
            "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0",
            "+1+SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(safe_text(risky), format!("'{risky}"));
        }
    }

    #[test]
    fn seconds_are_exact_to_the_millisecond() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(61_250), "61.250");
        assert_eq!(seconds(-1_500), "-1.500");
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_083_200_123), "2026-12-01T00:00:00.123Z");
    }

    #[test]
    fn request_times_take_rfc3339_or_unix_ms_and_name_the_field_otherwise() {
        let ok: ExportRequest = crate::http::json::decode_json(
            br#"{"kind":"calls","from":"2026-12-01T01:00:00+01:00","to":1796169600000}"#,
        )
        .unwrap();
        assert_eq!(ok.from.ms(), 1_796_083_200_000);
        assert_eq!(ok.to.ms(), 1_796_169_600_000);
        for (body, field) in [
            (r#"{"kind":"cdrs","from":0,"to":1}"#, "kind"),
            (r#"{"kind":"calls","from":"yesterday","to":1}"#, "from"),
            (r#"{"kind":"calls","from":0,"to":1.5}"#, "to"),
            (r#"{"kind":"calls","from":0}"#, "to"),
            (r#"{"kind":"calls","from":0,"to":1,"queues":[1]}"#, "queues"),
        ] {
            let e = crate::http::json::decode_json::<ExportRequest>(body.as_bytes()).unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{body}");
            assert_eq!(e.field.as_deref(), Some(field), "{body}: {e}");
        }
    }

    /// 1,500 calls: the first page comes back, then the store goes away before the second.
    #[tokio::test]
    async fn a_store_failure_after_the_first_page_ends_the_body_with_an_error() {
        let store = Store::sqlite_memory().await.unwrap();
        store.migrate().await.unwrap();
        let tenant = TenantId(uuid::Uuid::new_v4());
        let calls: Vec<CallRow> = (0..1500)
            .map(|i| CallRow {
                id: uuid::Uuid::new_v4(),
                tenant,
                queue_id: 1,
                queues: vec![1],
                agent_id: None,
                caller_number: "+15550100".into(),
                outcome: "abandoned".into(),
                arrived_at_ms: 1000 + i,
                wait_ms: 0,
                talk_ms: 0,
                offers: 0,
                synthetic: false,
                callback_leg: None,
            })
            .collect();
        store.insert_calls(&calls).await.unwrap();
        let mut export = Export {
            tenant,
            ids: ShownIds::new(IdCodec::new(b"test")),
            source: Source::Calls {
                filter: ExportCalls {
                    from_ms: 0,
                    to_ms: 10_000,
                    queue_id: None,
                    agent_id: None,
                },
                after: CallsAfter::start(0),
            },
            done: false,
            rows: 0,
        };
        let first = export.next_chunk(&store).await.unwrap().unwrap();
        assert_eq!(export.rows, 1000);
        store.close().await;
        let body = csv_body(store, export, Bytes::from(first));
        assert!(
            axum::body::to_bytes(body, usize::MAX).await.is_err(),
            "the body must end in an error, not look complete"
        );
    }
}
