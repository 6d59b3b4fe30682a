//! A recording's audio: a playback URL (S3's own presigned GET, or a URL switchyard signs
//! itself and serves with `Range`), a download, deletion (audited, idempotent, refused under
//! legal hold), the legal hold itself, and the tenant's retention.
//!
//! ```text
//!   GET presigned-url ─► stored on S3: S3 presigned GET (the player fetches from S3)
//!                     └► local or still spooled: /v1/recordings/{id}/audio?expires=..&signature=..
//!   GET audio (no key: the signature is the credential) ─► 403 expired or tampered
//!        └► the file, with Range / 206 / Accept-Ranges / Content-Length, audio/wav
//!   DELETE ─► row 'deleting' + audit ─► object, spool file, transcript ─► 'deleted' (204)
//! ```
//!
//! The signature is HMAC-SHA256 over `<recording id>\n<expires (unix seconds)>` with a key the
//! platform makes on first use (`platform_secrets`, shared by every instance on the database),
//! in lowercase hex; it is compared in constant time.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, Auth, require_role, require_tenant};
use crate::model::{Principal, Role};
use crate::openapi::ErrorBody;
use crate::store::{DeleteRefused, ObjectRow, ObjectState, RecordingRow};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(presigned_url))
        .routes(routes!(audio))
        .routes(routes!(download))
        .routes(routes!(delete_recording))
        .routes(routes!(legal_hold))
}

/// Longest life of a playback URL, and its default.
const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

type HmacSha256 = hmac::Hmac<sha2_11::Sha256>;

/// The signature of a playback URL for `id` valid until `expires` (unix seconds).
pub(crate) fn sign(key: &[u8], id: Uuid, expires: i64) -> String {
    // Any key length is valid for HMAC.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}\n{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` signs `id` until `expires`, and `expires` is not past `now` (unix s).
fn signature_ok(key: &[u8], id: Uuid, expires: i64, signature: &str, now: i64) -> bool {
    if expires < now {
        return false;
    }
    let Ok(given) = hex::decode(signature) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}\n{expires}").as_bytes());
    mac.verify_slice(&given).is_ok()
}

fn now_s() -> i64 {
    crate::store::now_ms() / 1000
}

/// The recording and its storage row, as this key may see them (404 otherwise, as for
/// another tenant's).
async fn visible(
    st: &AppState,
    p: &Principal,
    id: Uuid,
) -> Result<(RecordingRow, Option<ObjectRow>), ApiError> {
    let tenant = require_tenant(p)?;
    let rec = st
        .rt
        .store
        .recording(tenant, id)
        .await?
        .filter(|r| match (p.role, p.agent_id) {
            (Role::Agent, Some(a)) => r.agents.contains(&a),
            (Role::Agent, None) => false,
            _ => true,
        })
        .ok_or_else(|| ApiError::not_found(format!("no recording {id}")))?;
    let object = st.rt.store.recording_object(tenant, id).await?;
    Ok((rec, object))
}

/// The storage row of a recording whose audio can be had.
fn with_audio(id: Uuid, object: Option<ObjectRow>) -> Result<ObjectRow, ApiError> {
    object
        .filter(|o| matches!(o.state, ObjectState::Spooled | ObjectState::Stored))
        .ok_or_else(|| ApiError::not_found(format!("recording {id} has no audio")))
}

// ---- playback URL --------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExpiryQuery {
    /// How long the URL works, in seconds (1 to 604800) [default: 3600].
    #[param(minimum = 1, maximum = 604800)]
    expires_in_s: Option<u64>,
}

/// A URL an audio element can play (and seek in).
#[derive(Debug, Serialize, ToSchema)]
struct PlaybackUrl {
    /// Absolute for S3; a path on this server (signed) otherwise.
    url: String,
    /// When the URL stops working (unix ms).
    expires_at_ms: i64,
    /// `s3` (the object store's presigned GET) or `signed` (served by switchyard).
    kind: &'static str,
}

/// A playback URL for the recording: S3's presigned GET once stored there; otherwise a URL
/// this server signs and serves with `Range` (`/v1/recordings/{id}/audio`). Readers of the
/// tenant; an agent key only recordings its agent is heard in.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}/presigned-url",
    tag = "recordings",
    operation_id = "recording_presigned_url",
    params(("id" = Uuid, Path, description = "The recording's id"), ExpiryQuery),
    responses(
        (status = 200, description = "The URL and when it expires", body = PlaybackUrl),
        (status = 404, description = "No such recording, or it has no audio", body = ErrorBody),
        (status = 422, description = "`expires_in_s` out of range", body = ErrorBody),
    ),
)]
async fn presigned_url(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ExpiryQuery>,
) -> Result<Json<PlaybackUrl>, ApiError> {
    require_role(&p, READERS)?;
    let expiry = match q.expires_in_s {
        None => DEFAULT_EXPIRY,
        Some(s) if (1..=MAX_EXPIRY.as_secs()).contains(&s) => Duration::from_secs(s),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "expires_in_s",
                "must be 1 to 604800 seconds",
            ));
        }
    };
    let (_, object) = visible(&st, &p, id).await?;
    let object = with_audio(id, object)?;
    let expires_s = now_s().saturating_add(i64::try_from(expiry.as_secs()).unwrap_or(i64::MAX));
    let expires_at_ms = expires_s.saturating_mul(1000);
    let presigned = st
        .rt
        .objects
        .presign(&object, expiry)
        .await
        .map_err(|e| ApiError::unavailable(format!("the object store did not sign: {e}")))?;
    if let Some(url) = presigned {
        return Ok(Json(PlaybackUrl {
            url,
            expires_at_ms,
            kind: "s3",
        }));
    }
    let signature = sign(&st.rt.playback_key, id, expires_s);
    Ok(Json(PlaybackUrl {
        url: format!("/v1/recordings/{id}/audio?expires={expires_s}&signature={signature}"),
        expires_at_ms,
        kind: "signed",
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Signed {
    /// When the URL stops working (unix seconds), as signed.
    expires: Option<i64>,
    /// HMAC-SHA256 of `<id>\n<expires>`, lowercase hex.
    signature: Option<String>,
}

/// The recording's audio behind a signed URL (from `presigned-url`): no API key, the signature
/// is the credential. `Range` requests answer 206 with the slice, so an audio element can
/// seek. A recording stored on S3 redirects to a fresh presigned GET.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}/audio",
    tag = "recordings",
    operation_id = "recording_audio",
    security(()),
    params(("id" = Uuid, Path, description = "The recording's id"), Signed),
    responses(
        (status = 200, description = "The WAV file", content_type = "audio/wav"),
        (status = 206, description = "The requested range of it", content_type = "audio/wav"),
        (status = 307, description = "Stored on S3: its presigned GET"),
        (status = 401, description = "Not a signed URL (no `expires` or `signature`)", body = ErrorBody),
        (status = 403, description = "Expired or tampered signature", body = ErrorBody),
        (status = 404, description = "The recording has no audio (any more)", body = ErrorBody),
        (status = 416, description = "A range outside the file"),
    ),
)]
async fn audio(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<Signed>,
    request: Request,
) -> Result<Response, ApiError> {
    let (Some(expires), Some(signature)) = (q.expires, q.signature) else {
        return Err(ApiError::unauthorized(
            "a signed URL is needed (GET /v1/recordings/{id}/presigned-url)",
        ));
    };
    if !signature_ok(&st.rt.playback_key, id, expires, &signature, now_s()) {
        return Err(ApiError::forbidden(
            "the URL is expired or its signature is wrong",
        ));
    }
    let object = st.rt.store.recording_object_any(id).await?;
    let object = with_audio(id, object)?;
    serve(&st, &object, request, None).await
}

/// The recording's audio as a file download (`Content-Disposition: attachment`), with
/// `Range` support. Readers of the tenant; an agent key only recordings its agent is heard in.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}/download",
    tag = "recordings",
    operation_id = "recording_download",
    params(("id" = Uuid, Path, description = "The recording's id")),
    responses(
        (status = 200, description = "The WAV file", content_type = "audio/wav"),
        (status = 206, description = "The requested range of it", content_type = "audio/wav"),
        (status = 307, description = "Stored on S3: its presigned GET"),
        (status = 404, description = "No such recording, or it has no audio", body = ErrorBody),
        (status = 416, description = "A range outside the file"),
    ),
)]
async fn download(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    request: Request,
) -> Result<Response, ApiError> {
    require_role(&p, READERS)?;
    let (_, object) = visible(&st, &p, id).await?;
    let object = with_audio(id, object)?;
    serve(&st, &object, request, Some(&format!("{id}.wav"))).await
}

/// The file (with Range, Content-Length, Accept-Ranges and audio/wav, by tower-http's
/// `ServeFile`), or a redirect to S3.
async fn serve(
    st: &AppState,
    object: &ObjectRow,
    request: Request,
    attachment: Option<&str>,
) -> Result<Response, ApiError> {
    let Some(path) = st.rt.objects.local_file(object) else {
        let url = st
            .rt
            .objects
            .presign(object, Duration::from_secs(300))
            .await
            .map_err(|e| ApiError::unavailable(format!("the object store did not sign: {e}")))?
            .ok_or_else(|| ApiError::not_found("the recording has no audio"))?;
        let mut res = StatusCode::TEMPORARY_REDIRECT.into_response();
        let location = HeaderValue::from_str(&url)
            .map_err(|_| ApiError::unavailable("the object store signed an unusable URL"))?;
        res.headers_mut().insert(header::LOCATION, location);
        return Ok(res);
    };
    // Only the headers that ask for a part of the file (or a fresh copy) go on.
    let mut inner = Request::new(Body::empty());
    for name in [header::RANGE, header::IF_RANGE, header::IF_MODIFIED_SINCE] {
        if let Some(v) = request.headers().get(&name) {
            inner.headers_mut().insert(name, v.clone());
        }
    }
    let served = ServeFile::new(&path)
        .oneshot(inner)
        .await
        .map_err(|e| ApiError::unavailable(format!("reading the recording: {e}")))?;
    if served.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::not_found("the recording's file is missing"));
    }
    let mut res = served.map(Body::new);
    if res.status().is_success() {
        // Spool and stored files alike are WAV, whatever their names say.
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    }
    if let Some(name) = attachment
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

// ---- deletion and legal hold ----------------------------------------------------------------

/// Deletes the recording's audio (object, spool file) and transcript: admin, audited,
/// idempotent (deleting a deleted recording is 204 again); 409 while on legal hold. The
/// recording's metadata stays, for the call's history.
#[utoipa::path(
    delete,
    path = "/v1/recordings/{id}",
    tag = "recordings",
    operation_id = "delete_recording",
    params(("id" = Uuid, Path, description = "The recording's id")),
    responses(
        (status = 204, description = "Deleted (or already)"),
        (status = 404, description = "No such recording, or it never had audio", body = ErrorBody),
        (status = 409, description = "On legal hold", body = ErrorBody),
    ),
)]
async fn delete_recording(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let entry = audit(
        &p,
        Some(tenant),
        "recording.delete",
        "recording",
        id,
        json!({ "via": "api" }),
    );
    let row = match st.rt.store.begin_delete(tenant, id, &entry).await? {
        Ok(row) => row,
        Err(DeleteRefused::NotFound) => {
            return Err(ApiError::not_found(format!("recording {id} has no audio")));
        }
        Err(DeleteRefused::LegalHold) => {
            return Err(ApiError::conflict(format!(
                "recording {id} is on legal hold"
            )));
        }
    };
    if row.state == ObjectState::Deleting {
        // The row says deleting: a failure here is finished by the next start.
        st.rt
            .objects
            .finish_delete(&row)
            .await
            .map_err(|e| ApiError::unavailable(format!("deleting the recording: {e}")))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Hold {
    /// `true` keeps the recording from retention and from deletion until lifted.
    hold: bool,
}

#[derive(Debug, Serialize, ToSchema)]
struct HoldState {
    id: Uuid,
    legal_hold: bool,
}

/// Puts a legal hold on the recording, or lifts it (admin, audited).
#[utoipa::path(
    put,
    path = "/v1/recordings/{id}/legal-hold",
    tag = "recordings",
    operation_id = "recording_legal_hold",
    params(("id" = Uuid, Path, description = "The recording's id")),
    request_body = Hold,
    responses(
        (status = 200, description = "The hold as it now is", body = HoldState),
        (status = 404, description = "No such recording, or its audio is deleted", body = ErrorBody),
    ),
)]
async fn legal_hold(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Hold>,
) -> Result<Json<HoldState>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let entry = audit(
        &p,
        Some(tenant),
        if body.hold {
            "recording.legal_hold"
        } else {
            "recording.legal_hold_lifted"
        },
        "recording",
        id,
        json!({ "hold": body.hold }),
    );
    if !st
        .rt
        .store
        .set_legal_hold(tenant, id, body.hold, &entry)
        .await?
    {
        return Err(ApiError::not_found(format!("recording {id} has no audio")));
    }
    Ok(Json(HoldState {
        id,
        legal_hold: body.hold,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_recording_until_it_expires_and_not_once_changed() {
        let key = b"0123456789abcdef0123456789abcdef";
        let id = Uuid::from_u128(7);
        let sig = sign(key, id, 1_000);
        assert!(signature_ok(key, id, 1_000, &sig, 999));
        assert!(signature_ok(key, id, 1_000, &sig, 1_000));
        assert!(!signature_ok(key, id, 1_000, &sig, 1_001), "expired");
        assert!(
            !signature_ok(key, Uuid::from_u128(8), 1_000, &sig, 0),
            "another recording"
        );
        assert!(!signature_ok(key, id, 1_001, &sig, 0), "a later expiry");
        let mut tampered = sig.clone().into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(!signature_ok(key, id, 1_000, &tampered, 0));
        assert!(!signature_ok(b"another key", id, 1_000, &sig, 0));
        assert!(!signature_ok(key, id, 1_000, "not hex", 0));
    }
}
