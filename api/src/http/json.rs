//! Extractors whose rejections are [`ApiError`]s with a field name, instead of axum's plain-text
//! rejections:
//!
//! | input                                   | answer                                  |
//! |-----------------------------------------|-----------------------------------------|
//! | body not `application/json` (or `+json`)| 415 `unsupported_media_type`            |
//! | body over the limit                     | 413 `payload_too_large`                 |
//! | body not JSON, truncated, trailing junk | 400 `malformed_json`                    |
//! | wrong type, unknown or missing field    | 422 `invalid_field`, `field` = JSON path|
//! | path parameter that does not parse      | 400 `invalid_path`, `field` = its name  |
//! | query string that does not parse        | 400 `invalid_query`, `field` = its name |
//!
//! The JSON path comes from `serde_path_to_error` (`members[0].level`); for a missing or unknown
//! field it is completed with that field's name, which serde only gives in its message.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body in, or a JSON body out (serialises like `axum::Json`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type(
                "expected a body with content-type application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        decode_json(&bytes).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            ApiError::payload_too_large()
        }
        // The client went away or sent a broken body; nothing of ours to log.
        _ => ApiError::bad_request("the request body could not be read"),
    }
}

/// Decodes a JSON document into `T` with the answers of the table above (400 or 422).
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body the API takes is an object; serde would otherwise read a struct from an
    // array of its fields in order (`[null, null]` as a PATCH).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "the body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = render_path(e.path());
        let inner = e.into_inner();
        json_error(&inner, path)
    })?;
    de.end().map_err(|e| json_error(&e, String::new()))?;
    Ok(value)
}

fn json_error(e: &serde_json::Error, path: String) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = strip_position(&e.to_string());
            let field = complete_path(path, &message);
            let mut err = ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                sanitize(&message),
            );
            if !field.is_empty() {
                err = err.with_field(field);
            }
            err
        }
        Category::Eof if e.line() == 1 && e.column() == 0 => ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is empty",
        ),
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        ),
    }
}

/// `members[0].level`; the root is the empty string.
fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// serde reports a missing or unknown field at its parent; the name is in the message.
fn complete_path(path: String, message: &str) -> String {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(end) = rest.find('`')
        {
            let name = &rest[..end];
            // serde_path_to_error already has an unknown key in the path, not a missing one.
            let last = path.rsplit(['.', ']']).next().unwrap_or("");
            return if path.is_empty() {
                name.to_owned()
            } else if last == name {
                path
            } else {
                format!("{path}.{name}")
            };
        }
    }
    path
}

/// serde_json appends " at line L column C"; for a data error the field says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Rust type names are ours, not the client's business: "expected struct CreateQueue" reads
/// "expected an object".
fn sanitize(message: &str) -> String {
    const NAMED: [(&str, &str); 4] = [
        ("tuple struct ", "a value"),
        ("unit struct ", "null"),
        ("struct ", "an object"),
        ("enum ", "one of the allowed values"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'scan: while !rest.is_empty() {
        for (kw, replacement) in NAMED {
            if let Some(after) = rest.strip_prefix(kw) {
                let ident_len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let ident = &after[..ident_len];
                if ident.starts_with(|c: char| c.is_ascii_uppercase()) {
                    out.push_str(replacement);
                    rest = &after[ident_len..];
                    continue 'scan;
                }
            }
        }
        // Advance by one char, keeping the scan at word starts only.
        let mut chars = rest.char_indices();
        let (_, c) = chars.next().unwrap_or((0, ' '));
        out.push(c);
        rest = &rest[c.len_utf8()..];
        if c.is_ascii_alphanumeric() {
            let word = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push_str(&rest[..word]);
            rest = &rest[word..];
        }
    }
    out
}

/// Path parameters; a value that does not parse answers 400 `invalid_path` naming it.
#[derive(Clone, Copy, Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => {
                let names: Vec<String> = match RawPathParams::from_request_parts(parts, state).await
                {
                    Ok(raw) => raw.iter().map(|(k, _)| k.to_owned()).collect(),
                    Err(_) => Vec::new(),
                };
                Err(path_rejection(rejection, &names))
            }
        }
    }
}

fn path_rejection(rejection: PathRejection, names: &[String]) -> ApiError {
    use axum::extract::path::ErrorKind;
    let kind = match rejection {
        PathRejection::FailedToDeserializePathParams(e) => e.into_kind(),
        // A route without parameters extracting them: our bug, not the client's.
        other => return ApiError::internal(format!("path extraction: {other}")),
    };
    let only = || {
        if names.len() == 1 {
            Some(names[0].clone())
        } else {
            None
        }
    };
    let field = match kind {
        ErrorKind::ParseErrorAtKey { key, .. }
        | ErrorKind::DeserializeError { key, .. }
        | ErrorKind::InvalidUtf8InPathParam { key } => Some(key),
        ErrorKind::ParseErrorAtIndex { index, .. } => names.get(index).cloned(),
        ErrorKind::ParseError { .. } | ErrorKind::Message(_) => only(),
        ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. } => {
            return ApiError::internal(format!("path extraction: {kind}"));
        }
        other => return ApiError::internal(format!("path extraction: {other}")),
    };
    let message = match &field {
        Some(f) => format!("path parameter `{f}` is not valid"),
        None => "a path parameter is not valid".to_owned(),
    };
    let err = ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_path", message);
    match field {
        Some(f) => err.with_field(f),
        None => err,
    }
}

/// A query string; a parameter that does not parse, or a required one that is missing,
/// answers 400 `invalid_query` naming it.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        decode_query(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// Decodes `a=1&b=x` into `T` with the answers of the table above.
pub fn decode_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = render_path(e.path());
        let message = e.into_inner().to_string();
        let field = complete_path(path, &message);
        let err = ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("invalid query string: {}", sanitize(&message)),
        );
        if field.is_empty() {
            err
        } else {
            err.with_field(field)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use serde::Deserialize;
    use serde_json::{Value, json};
    use tower::ServiceExt;
    use uuid::Uuid;

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct Member {
        agent: Uuid,
        level: u8,
    }

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct CreateQueue {
        name: String,
        #[serde(default)]
        members: Vec<Member>,
    }

    #[derive(Debug, Deserialize)]
    struct Page {
        limit: u32,
        #[serde(default, rename = "after")]
        _after: Option<Uuid>,
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/queues",
                post(|ApiJson(q): ApiJson<CreateQueue>| async move { ApiJson(q) }),
            )
            .route(
                "/queues/{id}",
                get(|ApiPath(id): ApiPath<Uuid>| async move { id.to_string() }),
            )
            .route(
                "/queues/{id}/members/{n}",
                get(|ApiPath((id, n)): ApiPath<(Uuid, u32)>| async move { format!("{id}/{n}") }),
            )
            .route(
                "/calls",
                get(|ApiQuery(p): ApiQuery<Page>| async move { format!("{}", p.limit) }),
            )
            .layer(DefaultBodyLimit::max(256))
    }

    async fn send(req: axum::http::Request<Body>) -> (StatusCode, Value) {
        let resp = app().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    fn post_json(body: &str) -> axum::http::Request<Body> {
        axum::http::Request::post("/queues")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    fn get_req(uri: &str) -> axum::http::Request<Body> {
        axum::http::Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn valid_json_round_trips() {
        let (status, body) = send(post_json(r#"{"name":"sales"}"#)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"name": "sales", "members": []}));
    }

    #[tokio::test]
    async fn malformed_json_is_400_malformed_json() {
        let (status, body) = send(post_json(r#"{"name": "#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "malformed_json");
        assert!(body["error"].get("field").is_none());

        let (status, body) = send(post_json(r#"{"name":"a"} trailing"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "malformed_json");

        let (status, body) = send(post_json("")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "malformed_json");
        assert_eq!(body["error"]["message"], "the body is empty");
    }

    #[tokio::test]
    async fn wrong_type_is_422_with_the_json_path() {
        let agent = Uuid::new_v4();
        let body = format!(r#"{{"name":"a","members":[{{"agent":"{agent}","level":"high"}}]}}"#);
        let (status, body) = send(post_json(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "invalid_field");
        assert_eq!(body["error"]["field"], "members[0].level");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("invalid type: string \"high\""),
            "{message}"
        );
        assert!(!message.contains("line"), "{message}");
    }

    #[tokio::test]
    async fn unknown_field_is_422_naming_it() {
        let (status, body) = send(post_json(r#"{"name":"a","colour":"red"}"#)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["field"], "colour");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("unknown field `colour`")
        );
    }

    #[tokio::test]
    async fn missing_field_is_422_naming_it_under_its_parent() {
        let (status, body) = send(post_json(r#"{"members":[]}"#)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["field"], "name");

        let (status, body) = send(post_json(r#"{"name":"a","members":[{"level":1}]}"#)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["field"], "members[0].agent");
        assert_eq!(body["error"]["message"], "missing field `agent`");
    }

    #[tokio::test]
    async fn type_names_do_not_leak_into_messages() {
        let (status, body) = send(post_json("\"just a string\"")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("CreateQueue"), "{message}");
        assert!(message.contains("an object"), "{message}");
    }

    #[tokio::test]
    async fn wrong_or_missing_content_type_is_415() {
        let req = axum::http::Request::post("/queues")
            .header("content-type", "text/plain")
            .body(Body::from(r#"{"name":"a"}"#))
            .unwrap();
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["error"]["code"], "unsupported_media_type");

        let req = axum::http::Request::post("/queues")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(send(req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);

        // Parameters and structured `+json` types are JSON too.
        let req = axum::http::Request::post("/queues")
            .header(
                "content-type",
                "application/merge-patch+json; charset=utf-8",
            )
            .body(Body::from(r#"{"name":"a"}"#))
            .unwrap();
        assert_eq!(send(req).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn body_over_the_limit_is_413_json() {
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(300));
        let (status, body) = send(post_json(&big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "payload_too_large");
    }

    #[tokio::test]
    async fn bad_path_id_is_400_naming_the_parameter() {
        let (status, body) = send(get_req("/queues/not-a-uuid")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_path");
        assert_eq!(body["error"]["field"], "id");

        let id = Uuid::new_v4();
        let (status, body) = send(get_req(&format!("/queues/{id}/members/minus"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["field"], "n");

        let (status, _) = send(get_req(&format!("/queues/{id}/members/3"))).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn bad_query_is_400_naming_the_parameter() {
        let (status, body) = send(get_req("/calls?limit=ten")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_query");
        assert_eq!(body["error"]["field"], "limit");

        let (status, body) = send(get_req(&format!("/calls?after={}", Uuid::nil()))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["error"]["field"], "limit",
            "missing required parameter"
        );

        let (status, body) = send(get_req("/calls?limit=10&after=zzz")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["field"], "after");

        let (status, body) = send(get_req("/calls?limit=10")).await;
        assert_eq!((status, body), (StatusCode::OK, Value::from(10)));
    }

    #[test]
    fn sanitize_replaces_only_rust_type_names() {
        assert_eq!(
            sanitize("invalid type: map, expected struct Foo"),
            "invalid type: map, expected an object"
        );
        assert_eq!(
            sanitize("expected enum Role"),
            "expected one of the allowed values"
        );
        assert_eq!(sanitize("unknown field `struct`"), "unknown field `struct`");
        assert_eq!(sanitize("destruct Foo"), "destruct Foo");
        assert_eq!(sanitize("naïve struct Ünïcode"), "naïve struct Ünïcode");
    }
}
