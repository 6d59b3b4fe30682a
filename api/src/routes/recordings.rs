//! A call's recording: started, stopped, paused or masked while the call is in progress (the
//! agent on the call, or a supervisor), and the recordings a call left.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchyard_engine::recording::{RecordingAction, Requester};
use switchyard_engine::{AgentId, Command};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::calls::tenant_call;
use super::{AppState, NumberSight, READERS, audit, engine_error};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, acting_agent, require_role, require_tenant};
use crate::model::{Principal, Role};
use crate::openapi::ErrorBody;
use crate::store::RecordingRow;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(control))
        .routes(routes!(list_for_call))
        .routes(routes!(upload))
}

/// Who may act on a recording: agents (on their own call only) and supervisors.
const ACTORS: &[Role] = &[Role::Admin, Role::Supervisor, Role::Agent];

/// What to do with the call's recording.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
enum Action {
    /// Start recording now (a policy other than `never`; the call must be with an agent).
    Start,
    /// Stop (`on-demand` by anyone allowed; `always` by a supervisor; never `always-forced`).
    Stop,
    /// Write silence from now on: the span is logged with who asked.
    Pause,
    Resume,
    /// Silence while a card number is read (PCI DSS): allowed to the agent even when the
    /// recording is `always-forced`.
    Mask,
    Unmask,
}

impl Action {
    fn to_engine(self) -> RecordingAction {
        match self {
            Action::Start => RecordingAction::Start,
            Action::Stop => RecordingAction::Stop,
            Action::Pause => RecordingAction::Pause,
            Action::Resume => RecordingAction::Resume,
            Action::Mask => RecordingAction::Mask,
            Action::Unmask => RecordingAction::Unmask,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Control {
    action: Action,
}

/// What was done.
#[derive(Debug, Serialize, ToSchema)]
struct Controlled {
    /// The call (its arrival leg).
    id: Uuid,
    action: Action,
}

/// Starts, stops, pauses, resumes, masks or unmasks a call's recording. A pause or mask writes
/// silence for its span, so the recording's timeline stays the call's; each span is kept in
/// the recording's log with the key that asked.
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/recording",
    tag = "calls",
    operation_id = "control_call_recording",
    params(("id" = Uuid, Path, description = "The call's id (its arrival leg)")),
    request_body = Control,
    responses(
        (status = 200, description = "Done", body = Controlled),
        (status = 403, description = "A read-only key, an agent key bound to no agent, or an agent on another agent's call", body = ErrorBody),
        (status = 404, description = "No such call in progress in the tenant's queues", body = ErrorBody),
        (status = 409, description = "The policy or the recording's state does not allow it (the reason says which: never recorded, already recording, not recording, already paused, always-forced...)", body = ErrorBody),
    ),
)]
async fn control(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Control>,
) -> Result<Json<Controlled>, ApiError> {
    require_role(&p, ACTORS)?;
    let tenant = require_tenant(&p)?;
    let agent = acting_agent(&p)?;
    let call = tenant_call(&st, tenant, id).await?;
    let by = Requester {
        name: requester_name(&p),
        agent: agent.and_then(|a| u32::try_from(a).ok()).map(AgentId),
    };
    st.rt
        .engine
        .command(Command::RecordCall {
            call,
            action: body.action.to_engine(),
            by,
        })
        .await
        .map_err(|e| match e {
            switchyard_engine::driver::DriverError::Engine(
                switchyard_engine::EngineError::Recording { why, .. },
            ) if why.contains("not this agent's") => ApiError::forbidden(why),
            switchyard_engine::driver::DriverError::Engine(
                switchyard_engine::EngineError::Recording { why, .. },
            ) => ApiError::conflict(why),
            other => engine_error(other),
        })?;
    let a = audit(
        &p,
        Some(tenant),
        "call.recording",
        "call",
        id,
        json!({ "action": body.action }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    Ok(Json(Controlled {
        id,
        action: body.action,
    }))
}

/// One recording of a call.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RecordingView {
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
    /// The policy mode that applied (`on-demand`, `always`, `always-forced`).
    mode: String,
    /// `live` (recorder legs) or `switch` (`uuid_record`).
    capture: String,
    /// The live capture failed and the switch recorded instead.
    fell_back: bool,
    stereo: bool,
    started_at_ms: i64,
    /// Null while it runs.
    ended_at_ms: Option<i64>,
    /// `recording`, `completed`, `damaged` (audio, but not whole), `failed` (no audio).
    status: String,
    error: Option<String>,
    duration_ms: Option<i64>,
    sample_rate: Option<i32>,
    channels: Option<i32>,
    bytes: Option<i64>,
    /// Share of 20 ms windows in which nobody speaks.
    silence_ratio: Option<f64>,
    /// The silent spans: `{kind: paused|masked, start_ms, end_ms, by, ended_by}`.
    #[schema(value_type = Vec<Object>)]
    spans: serde_json::Value,
    /// Per channel: `peak_dbfs`, `channel_silence`, `frames_per_peak` and `peaks` (min, max
    /// pairs for drawing a waveform); null until measured.
    #[schema(value_type = Object, nullable)]
    waveform: serde_json::Value,
}

pub(super) fn recording_view(st: &AppState, r: RecordingRow, sight: NumberSight) -> RecordingView {
    let ids = &st.rt.ids;
    let agent = r.agents.first().copied();
    RecordingView {
        id: r.id,
        call_id: r.call_id,
        leg: r.leg,
        queue_id: ids.queue(r.queue_id),
        campaign_id: r.campaign_id.map(|c| ids.campaign(c)),
        agents: r.agents.iter().map(|a| ids.agent(*a)).collect(),
        caller_number: sight.show(&r.caller_number, agent),
        mode: r.mode,
        capture: r.capture,
        fell_back: r.fell_back,
        stereo: r.stereo,
        started_at_ms: r.started_at_ms,
        ended_at_ms: r.ended_at_ms,
        status: r.status,
        error: r.error,
        duration_ms: r.duration_ms,
        sample_rate: r.sample_rate,
        channels: r.channels,
        bytes: r.bytes,
        silence_ratio: r.silence_ratio,
        spans: r.spans,
        waveform: r.waveform,
    }
}

/// A call's recordings.
#[derive(Debug, Serialize, ToSchema)]
struct RecordingList {
    recordings: Vec<RecordingView>,
}

/// The recordings a call has (oldest first), with their silent spans, who silenced them,
/// and what the files measured. An agent key sees only recordings of its own calls.
#[utoipa::path(
    get,
    path = "/v1/calls/{id}/recordings",
    tag = "calls",
    operation_id = "list_call_recordings",
    params(("id" = Uuid, Path, description = "The call's id (its arrival leg)")),
    responses(
        (status = 200, description = "The call's recordings (empty when none)", body = RecordingList),
    ),
)]
async fn list_for_call(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<RecordingList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let sight = NumberSight::of(&p);
    let rows = st.rt.store.recordings_for_call(tenant, id).await?;
    let mine = |r: &RecordingRow| match (p.role, p.agent_id) {
        (Role::Agent, Some(a)) => r.agents.contains(&a),
        (Role::Agent, None) => false,
        _ => true,
    };
    let recordings = rows
        .into_iter()
        .filter(mine)
        .map(|r| recording_view(&st, r, sight))
        .collect();
    Ok(Json(RecordingList { recordings }))
}

/// How the span log names a key: its id and role (the audit log has the rest).
fn requester_name(p: &Principal) -> String {
    format!("key {} ({})", p.key_id, p.role.as_str())
}

// ---- switch recordings uploaded by FreeSWITCH ----------------------------------------------

/// Largest upload: four hours of stereo 16-bit audio at 48 kHz is 2.8 GB.
const MAX_UPLOAD_BYTES: u64 = 4 << 30;

/// Receives a recording FreeSWITCH wrote with `uuid_record` (mod_http_cache uploads it with
/// PUT when the file closes, to `http_cache://http://switchyard:TOKEN@host/v1/recordings/upload/{file}`).
/// Authenticated by the upload secret (`[recording] upload_token_file`), as HTTP Basic
/// credentials (any user, the secret as password) or a Bearer token; not by an API key. The
/// body is streamed to disk and appears under its name only once whole, where the driver
/// waits for it after RECORD_STOP.
#[utoipa::path(
    put,
    path = "/v1/recordings/upload/{file}",
    tag = "recordings",
    operation_id = "upload_switch_recording",
    params(("file" = String, Path, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.wav$", description = "`<recording id>.wav`, the name the driver gave `uuid_record`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The WAV file as FreeSWITCH wrote it (any content type is taken)"),
    responses(
        (status = 201, description = "Stored"),
        (status = 401, description = "No upload secret, or a wrong one", body = ErrorBody),
        (status = 404, description = "Uploads are not enabled on this server", body = ErrorBody),
        (status = 413, description = "Larger than 4 GiB", body = ErrorBody),
        (status = 422, description = "`file` is not a recording's file name", body = ErrorBody),
    ),
)]
async fn upload(
    State(st): State<AppState>,
    ApiPath(file): ApiPath<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<axum::http::StatusCode, ApiError> {
    // Credentials first, so an anonymous request learns nothing of the server's setup.
    let Some(uploads) = &st.rt.uploads else {
        return Err(if headers.contains_key(axum::http::header::AUTHORIZATION) {
            ApiError::not_found("recording uploads are not enabled")
        } else {
            ApiError::unauthorized("the recording upload secret is missing")
        });
    };
    if !upload_authorized(&headers, &uploads.token) {
        return Err(ApiError::unauthorized(
            "the recording upload secret is missing or wrong",
        ));
    }
    if !is_recording_file(&file) {
        return Err(ApiError::unprocessable(
            "file",
            "must be a recording's file name: <uuid>.wav",
        ));
    }
    let dir = uploads.dir.clone();
    let part = dir.join(format!("{file}.part"));
    let done = dir.join(&file);
    let written = write_body(&dir, &part, body).await;
    match written {
        Ok(()) => {
            tokio::fs::rename(&part, &done)
                .await
                .map_err(ApiError::internal)?;
            Ok(axum::http::StatusCode::CREATED)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

async fn write_body(
    dir: &std::path::Path,
    part: &std::path::Path,
    body: axum::body::Body,
) -> Result<(), ApiError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(ApiError::internal)?;
    let mut out = tokio::fs::File::create(part)
        .await
        .map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the body broke off: {e}")))?;
        total += chunk.len() as u64;
        if total > MAX_UPLOAD_BYTES {
            return Err(ApiError::payload_too_large());
        }
        out.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    out.flush().await.map_err(ApiError::internal)?;
    out.sync_all().await.map_err(ApiError::internal)
}

/// `<uuid>.wav`, lower-case hex: the only names the driver gives `uuid_record`.
fn is_recording_file(name: &str) -> bool {
    name.strip_suffix(".wav")
        .is_some_and(|stem| stem.len() == 36 && switchyard_engine::LegId::parse(stem).is_some())
}

/// Bearer `<secret>`, or Basic with the secret as password. Compared as digests, so the time
/// taken says nothing of how much of a guess was right.
fn upload_authorized(headers: &axum::http::HeaderMap, secret: &str) -> bool {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, rest)) = value.trim().split_once(' ') else {
        return false;
    };
    let offered = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
            return false;
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match text.split_once(':') {
            Some((_, password)) => password.to_owned(),
            None => return false,
        }
    } else {
        return false;
    };
    let a = Sha256::digest(offered.as_bytes());
    let b = Sha256::digest(secret.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
