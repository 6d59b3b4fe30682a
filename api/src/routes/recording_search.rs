//! `/v1/recordings`: the tenant's recordings searched (by time, queue, agent, caller,
//! duration, and their transcripts' words and analysis), one recording's metadata, and its
//! transcript, which an external speech and AI service writes (`PUT`) and portals read.
//!
//! The logic is in the store (`store::transcripts`): these handlers check the key, the query
//! or body, and turn rows into views. Who sees what is as for a call's recordings: readers of
//! the tenant; an agent key only recordings its own agent is heard in (any other answers 404,
//! as another tenant's does); caller numbers as [`NumberSight`] says.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::recordings::{RecordingView, recording_view};
use super::{AppState, NumberSight, READERS, SUPERVISORS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::model::{Principal, Role};
use crate::openapi::ErrorBody;
use crate::store::{
    MAX_RECORDINGS_PAGE, RecordingFilter, RecordingHit, RecordingRow, Segment, TranscriptInput,
    TranscriptRow, search_words,
};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(read))
        .routes(routes!(put_transcript, get_transcript))
}

/// Whether this key may see this recording of its tenant: an agent key only the recordings
/// its agent is heard in (none for a key bound to no agent), every other reader all of them.
fn sees(p: &Principal, r: &RecordingRow) -> bool {
    match (p.role, p.agent_id) {
        (Role::Agent, Some(a)) => r.agents.contains(&a),
        (Role::Agent, None) => false,
        _ => true,
    }
}

/// The tenant's recording `id` as this key may see it; 404 otherwise (another tenant's, or an
/// agent key's recording it is not on: neither learns that it exists).
async fn visible(st: &AppState, p: &Principal, id: Uuid) -> Result<RecordingHit, ApiError> {
    let tenant = require_tenant(p)?;
    st.rt
        .store
        .recording_hit(tenant, id)
        .await?
        .filter(|h| sees(p, &h.recording))
        .ok_or_else(|| ApiError::not_found(format!("no recording {id}")))
}

// ---- the search ----------------------------------------------------------------------------

/// A transcript's sentiment: a label, as speech-analytics services give it per call.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Sentiment {
    Positive,
    Neutral,
    Negative,
    Mixed,
}

impl Sentiment {
    fn as_str(self) -> &'static str {
        match self {
            Sentiment::Positive => "positive",
            Sentiment::Neutral => "neutral",
            Sentiment::Negative => "negative",
            Sentiment::Mixed => "mixed",
        }
    }
}

/// The statuses a recording row can hold.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum StatusFilter {
    Recording,
    Completed,
    Damaged,
    Failed,
}

impl StatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Recording => crate::store::OPEN_RECORDING,
            StatusFilter::Completed => "completed",
            StatusFilter::Damaged => "damaged",
            StatusFilter::Failed => "failed",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Started at or after (Unix milliseconds).
    from_ms: Option<i64>,
    /// Started before (Unix milliseconds).
    to_ms: Option<i64>,
    /// The queue the recorded call was in.
    queue_id: Option<i64>,
    /// The campaign whose dial the recorded call was.
    campaign_id: Option<i64>,
    /// An agent heard in the recording (any of its agents).
    agent_id: Option<i64>,
    /// The caller's number, exactly (as the calls listing matches it).
    caller_number: Option<String>,
    /// `recording` (running), `completed`, `damaged` or `failed`; absent: all.
    // Inline: a parameter's enum is not registered as a component, so a reference to it
    // would not resolve.
    #[param(inline)]
    status: Option<StatusFilter>,
    /// At least this long (recordings with no duration yet are left out).
    #[param(minimum = 0)]
    min_duration_ms: Option<i64>,
    /// At most this long (recordings with no duration yet are left out).
    #[param(minimum = 0)]
    max_duration_ms: Option<i64>,
    /// Only recordings with (`true`) or without (`false`) a transcript.
    has_transcript: Option<bool>,
    /// Words that must all occur in the transcript, each whole and case-insensitively (no
    /// stemming, no prefixes); at most 16 words, 500 characters.
    q: Option<String>,
    /// The transcript's sentiment.
    #[param(inline)]
    sentiment: Option<Sentiment>,
    /// The transcript's quality score at least this (0-100).
    #[param(minimum = 0, maximum = 100)]
    min_quality: Option<f64>,
    /// One of the transcript's tags, exactly.
    tag: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (default 50, at most 500: more is cut to 500; 0 is refused).
    #[param(minimum = 1)]
    limit: Option<u32>,
}

/// A recording in a result list: its row without the bulky parts (the silent spans and the
/// waveform: `GET /v1/recordings/{id}` has them), and its transcript's analysis.
#[derive(Debug, Serialize, ToSchema)]
struct RecordingSummary {
    id: Uuid,
    /// The call (its arrival leg).
    call_id: Uuid,
    /// The leg recorded (the customer's; a callback's customer leg).
    leg: Uuid,
    queue_id: i64,
    /// The campaign whose dial the call was (null for other calls).
    campaign_id: Option<i64>,
    /// Every agent heard in it, in order.
    agents: Vec<i64>,
    caller_number: String,
    /// `on-demand`, `always`, `always-forced`.
    mode: String,
    /// `recording`, `completed`, `damaged` (audio, but not whole), `failed` (no audio).
    status: String,
    stereo: bool,
    started_at_ms: i64,
    /// Null while it runs.
    ended_at_ms: Option<i64>,
    duration_ms: Option<i64>,
    channels: Option<i32>,
    sample_rate: Option<i32>,
    bytes: Option<i64>,
    /// Share of 20 ms windows in which nobody speaks.
    silence_ratio: Option<f64>,
    has_transcript: bool,
    /// The transcript's sentiment (`positive`, `neutral`, `negative`, `mixed`), if given.
    sentiment: Option<String>,
    /// The transcript's quality score (0-100), if given.
    quality_score: Option<f64>,
    /// The transcript's tags (empty without a transcript).
    tags: Vec<String>,
}

fn summary(st: &AppState, h: RecordingHit, sight: NumberSight) -> RecordingSummary {
    let ids = &st.rt.ids;
    let r = h.recording;
    RecordingSummary {
        id: r.id,
        call_id: r.call_id,
        leg: r.leg,
        queue_id: ids.queue(r.queue_id),
        campaign_id: r.campaign_id.map(|c| ids.campaign(c)),
        agents: r.agents.iter().map(|a| ids.agent(*a)).collect(),
        // As on the call's recordings: the number is the first agent's call.
        caller_number: sight.show(&r.caller_number, r.agents.first().copied()),
        mode: r.mode,
        status: r.status,
        stereo: r.stereo,
        started_at_ms: r.started_at_ms,
        ended_at_ms: r.ended_at_ms,
        duration_ms: r.duration_ms,
        channels: r.channels,
        sample_rate: r.sample_rate,
        bytes: r.bytes,
        silence_ratio: r.silence_ratio,
        has_transcript: h.has_transcript,
        sentiment: h.sentiment,
        quality_score: h.quality_score,
        tags: h.tags,
    }
}

/// A page of recordings, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct RecordingPage {
    recordings: Vec<RecordingSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// The tenant's recordings, newest first (by start), filtered and paged like the calls
/// listing. Every filter applies (AND). An agent key finds only recordings its agent is heard
/// in.
#[utoipa::path(
    get,
    path = "/v1/recordings",
    tag = "recordings",
    operation_id = "search_recordings",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of recordings", body = RecordingPage),
        (status = 400, description = "A filter that does not parse, such as an unknown `sentiment` (named in `field`)", body = ErrorBody),
        (status = 422, description = "`to_ms` before `from_ms`, `max_duration_ms` below `min_duration_ms`, a negative duration, `min_quality` outside 0-100, a `q` with no word or too many, a `cursor` not from a previous page, `limit=0`, or control characters in a filter (named in `field`)", body = ErrorBody),
    ),
)]
async fn search(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<RecordingPage>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let filter = search_filter(&st, &p, q)?;
    let sight = NumberSight::of(&p);
    // An agent key bound to no agent is heard in no recording.
    let (rows, next) = if p.role == Role::Agent && p.agent_id.is_none() {
        (Vec::new(), None)
    } else {
        st.rt.store.search_recordings(tenant, &filter).await?
    };
    Ok(Json(RecordingPage {
        recordings: rows.into_iter().map(|h| summary(&st, h, sight)).collect(),
        next_cursor: next,
    }))
}

/// The store's filter for a query: every check that answers 422 naming the parameter.
fn search_filter(
    st: &AppState,
    p: &Principal,
    q: SearchQuery,
) -> Result<RecordingFilter, ApiError> {
    // PostgreSQL refuses text with NUL in it (a 500); nothing stored has control characters.
    for (field, value) in [("caller_number", &q.caller_number), ("tag", &q.tag)] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().any(char::is_control))
        {
            return Err(ApiError::unprocessable(
                field,
                "must not contain control characters",
            ));
        }
    }
    let limit = super::page_limit(q.limit, 50, MAX_RECORDINGS_PAGE)?;
    if let (Some(f), Some(t)) = (q.from_ms, q.to_ms)
        && f > t
    {
        return Err(ApiError::unprocessable(
            "to_ms",
            "must not be before from_ms",
        ));
    }
    for (field, value) in [
        ("min_duration_ms", q.min_duration_ms),
        ("max_duration_ms", q.max_duration_ms),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::unprocessable(field, "must not be negative"));
        }
    }
    if let (Some(min), Some(max)) = (q.min_duration_ms, q.max_duration_ms)
        && min > max
    {
        return Err(ApiError::unprocessable(
            "max_duration_ms",
            "must not be below min_duration_ms",
        ));
    }
    if let Some(m) = q.min_quality
        && !(0.0..=100.0).contains(&m)
    {
        return Err(ApiError::unprocessable(
            "min_quality",
            "must be between 0 and 100",
        ));
    }
    let words =
        q.q.as_deref()
            .map(search_words)
            .transpose()?
            .unwrap_or_default();
    let own_agent = match p.role {
        Role::Agent => p.agent_id,
        _ => None,
    };
    Ok(RecordingFilter {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        // A number never shown matches no recording (-1 is no store id).
        queue_id: q
            .queue_id
            .map(|v| st.rt.ids.decode(IdKind::Queue, v).unwrap_or(-1)),
        campaign_id: q
            .campaign_id
            .map(|v| st.rt.ids.decode(IdKind::Campaign, v).unwrap_or(-1)),
        agent_id: q
            .agent_id
            .map(|v| st.rt.ids.decode(IdKind::Agent, v).unwrap_or(-1)),
        caller_number: q.caller_number,
        status: q.status.map(|s| s.as_str().to_owned()),
        min_duration_ms: q.min_duration_ms,
        max_duration_ms: q.max_duration_ms,
        has_transcript: q.has_transcript,
        words,
        sentiment: q.sentiment.map(|s| s.as_str().to_owned()),
        min_quality: q.min_quality,
        tag: q.tag,
        own_agent,
        cursor: q.cursor,
        // `page_limit` keeps it in 1..=500.
        limit: u32::try_from(limit).unwrap_or(50),
    })
}

// ---- one recording ---------------------------------------------------------------------------

/// One recording: everything its row holds, as on the call's recordings, and whether it has a
/// transcript.
#[derive(Debug, Serialize, ToSchema)]
struct RecordingDetail {
    #[serde(flatten)]
    recording: RecordingView,
    /// The file's format: always `wav` (PCM, both ways of capturing).
    format: &'static str,
    has_transcript: bool,
}

/// One recording's metadata: duration, rate, channels, size, silence, the waveform's peaks,
/// the silent spans with who paused or masked them, and whether it has a transcript.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}",
    tag = "recordings",
    operation_id = "get_recording",
    params(("id" = Uuid, Path, description = "The recording's id")),
    responses(
        (status = 200, description = "The recording; the caller's number masked as for its call", body = RecordingDetail),
        (status = 404, description = "No such recording of the tenant's (or, for an agent key, none its agent is heard in)", body = ErrorBody),
    ),
)]
async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<RecordingDetail>, ApiError> {
    require_role(&p, READERS)?;
    let hit = visible(&st, &p, id).await?;
    Ok(Json(RecordingDetail {
        recording: recording_view(&st, hit.recording, NumberSight::of(&p)),
        format: "wav",
        has_transcript: hit.has_transcript,
    }))
}

// ---- transcripts -----------------------------------------------------------------------------

/// One stretch of speech.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SegmentBody {
    /// 0: left (the caller, in a stereo recording), 1: right (the agent). A segment names its
    /// channel, its speaker, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    channel: Option<u32>,
    /// A diarised speaker's label (`caller`, `agent`, `spk_1`...), at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    speaker: Option<String>,
    /// From the start of the recording.
    #[schema(minimum = 0)]
    start_ms: i64,
    /// Not before `start_ms`.
    #[schema(minimum = 0)]
    end_ms: i64,
    /// At most 10,000 characters; line breaks and tabs are the only control characters taken.
    text: String,
    /// 0-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    confidence: Option<f64>,
}

impl SegmentBody {
    fn into_store(self) -> Segment {
        Segment {
            channel: self.channel,
            speaker: self.speaker,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            text: self.text,
            confidence: self.confidence,
        }
    }

    fn of(s: Segment) -> SegmentBody {
        SegmentBody {
            channel: s.channel,
            speaker: s.speaker,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            text: s.text,
            confidence: s.confidence,
        }
    }
}

/// A recording's transcript and its analysis, written whole (a PUT replaces what was there).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TranscriptBody {
    /// In order of time; at most 10,000.
    #[schema(max_items = 10000)]
    segments: Vec<SegmentBody>,
    sentiment: Option<Sentiment>,
    /// At most 20,000 characters.
    summary: Option<String>,
    /// 0-100.
    #[schema(minimum = 0, maximum = 100)]
    quality_score: Option<f64>,
    /// At most 50 distinct labels of at most 100 characters.
    #[serde(default)]
    #[schema(max_items = 50)]
    tags: Vec<String>,
}

/// A recording's transcript.
#[derive(Debug, Serialize, ToSchema)]
struct TranscriptView {
    recording_id: Uuid,
    segments: Vec<SegmentBody>,
    /// `positive`, `neutral`, `negative` or `mixed`.
    sentiment: Option<String>,
    summary: Option<String>,
    quality_score: Option<f64>,
    tags: Vec<String>,
    /// When it was last written (Unix milliseconds).
    updated_at_ms: i64,
}

fn transcript_view(t: TranscriptRow) -> TranscriptView {
    TranscriptView {
        recording_id: t.recording_id,
        segments: t.segments.into_iter().map(SegmentBody::of).collect(),
        sentiment: t.sentiment,
        summary: t.summary,
        quality_score: t.quality_score,
        tags: t.tags,
        updated_at_ms: t.updated_at_ms,
    }
}

/// Writes a recording's transcript and analysis (admin or supervisor keys: the key an
/// external speech and AI service is given), replacing any it had. Audited without its text.
#[utoipa::path(
    put,
    path = "/v1/recordings/{id}/transcript",
    tag = "recordings",
    operation_id = "put_recording_transcript",
    params(("id" = Uuid, Path, description = "The recording's id")),
    request_body = TranscriptBody,
    responses(
        (status = 200, description = "Stored", body = TranscriptView),
        (status = 403, description = "An agent or read-only key", body = ErrorBody),
        (status = 404, description = "No such recording of the tenant's", body = ErrorBody),
        (status = 422, description = "A rule broken (named in `field`, e.g. `segments[3].end_ms`): more than 10,000 segments, a segment naming neither channel nor speaker, `end_ms` before `start_ms`, a text over 10,000 characters, a confidence outside 0-1, `quality_score` outside 0-100, a tag twice", body = ErrorBody),
    ),
)]
async fn put_transcript(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TranscriptBody>,
) -> Result<Json<TranscriptView>, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let input = TranscriptInput {
        segments: body
            .segments
            .into_iter()
            .map(SegmentBody::into_store)
            .collect(),
        sentiment: body.sentiment.map(|s| s.as_str().to_owned()),
        summary: body.summary,
        quality_score: body.quality_score,
        tags: body.tags,
    };
    input
        .check()
        .map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    // The text stays out of the audit log: it is the conversation itself.
    let a = audit(
        &p,
        Some(tenant),
        "recording.transcript",
        "recording",
        id,
        json!({
            "segments": input.segments.len(),
            "sentiment": input.sentiment,
            "quality_score": input.quality_score,
            "tags": input.tags,
        }),
    );
    let stored = st
        .rt
        .store
        .put_transcript(tenant, id, &input, &a)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no recording {id}")))?;
    Ok(Json(transcript_view(stored)))
}

/// A recording's transcript and analysis (readers; an agent key only for recordings its agent
/// is heard in).
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}/transcript",
    tag = "recordings",
    operation_id = "get_recording_transcript",
    params(("id" = Uuid, Path, description = "The recording's id")),
    responses(
        (status = 200, description = "The transcript", body = TranscriptView),
        (status = 404, description = "No such recording of the tenant's (or, for an agent key, none its agent is heard in), or no transcript written for it", body = ErrorBody),
    ),
)]
async fn get_transcript(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TranscriptView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let hit = visible(&st, &p, id).await?;
    if !hit.has_transcript {
        return Err(ApiError::not_found(format!(
            "recording {id} has no transcript"
        )));
    }
    let t = st
        .rt
        .store
        .transcript(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("recording {id} has no transcript")))?;
    Ok(Json(transcript_view(t)))
}
