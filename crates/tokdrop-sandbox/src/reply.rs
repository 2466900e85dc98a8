//! How the emulator answers: the `{data, error}` envelope (with `data: {}` on errors), the flat
//! OAuth error, plain pages, redirects — plus the parts every endpoint shares: injected faults
//! (including the dropped connection of a lost answer), bearer-token checks, per-token rate
//! windows and scope checks, and recording each call. Endpoint logic lives in the other files.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::config::{ErrorData, Fault, SandboxEndpoint};
use super::records::CallRecord;
use super::state::{Shared, fingerprint, log_id};

/// An answer before it becomes a `Response`, so it can be recorded first.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    /// `ok` or the error code (for the record).
    pub code: String,
    pub body: ReplyBody,
    pub headers: Vec<(HeaderName, String)>,
    /// Close the connection instead of answering.
    pub drop: bool,
    /// Extra detail for the call record.
    pub detail: Option<String>,
}

#[derive(Debug)]
pub(super) enum ReplyBody {
    Json(Box<Value>),
    Text(String),
    /// A body with its own content type (injected raw answers, gateway pages).
    Raw {
        content_type: String,
        body: String,
    },
    Empty,
}

/// What a gateway in front of TikTok's API answers when the service behind it fails: HTML,
/// not the JSON envelope (tiktok-api.md §2.1: never trust a body to be JSON).
const GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

impl Reply {
    fn new(status: u16, code: &str, body: ReplyBody) -> Self {
        Self {
            status,
            code: code.to_string(),
            body,
            headers: Vec::new(),
            drop: false,
            detail: None,
        }
    }

    /// Success envelope around `data`.
    pub fn ok(data: Value) -> Self {
        let error = json!({"code": "ok", "message": "", "log_id": log_id()});
        Self::new(
            200,
            "ok",
            ReplyBody::Json(Box::new(json!({"data": data, "error": error}))),
        )
    }

    /// Success without data: only the `error` object (cancel, tiktok-api.md §4.8).
    pub fn ok_without_data() -> Self {
        let error = json!({"code": "ok", "message": "", "log_id": log_id()});
        Self::new(
            200,
            "ok",
            ReplyBody::Json(Box::new(json!({"error": error}))),
        )
    }

    /// Error envelope with `data: {}`.
    pub fn api_error(status: u16, code: &str, message: &str) -> Self {
        let error = json!({"code": code, "message": message, "log_id": log_id()});
        Self::new(
            status,
            code,
            ReplyBody::Json(Box::new(json!({"data": {}, "error": error}))),
        )
    }

    /// Flat OAuth body: success fields as they are, or `{error, error_description, log_id}`.
    pub fn oauth_ok(body: Value) -> Self {
        Self::new(200, "ok", ReplyBody::Json(Box::new(body)))
    }

    pub fn oauth_error(status: u16, error: &str, description: &str) -> Self {
        Self::new(
            status,
            error,
            ReplyBody::Json(Box::new(
                json!({"error": error, "error_description": description, "log_id": log_id()}),
            )),
        )
    }

    pub fn text(status: u16, code: &str, text: impl Into<String>) -> Self {
        Self::new(status, code, ReplyBody::Text(text.into()))
    }

    pub fn empty(status: u16, code: &str) -> Self {
        Self::new(status, code, ReplyBody::Empty)
    }

    pub fn redirect(location: String, code: &str) -> Self {
        let mut reply = Self::new(302, code, ReplyBody::Empty);
        reply.headers.push((header::LOCATION, location));
        reply
    }

    pub fn with_header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The answer an injected fault gives on `endpoint`.
    fn from_fault(fault: &Fault, endpoint: SandboxEndpoint) -> Self {
        let status = fault.http_status;
        let message = fault
            .message
            .as_deref()
            .unwrap_or("injected by the sandbox");
        if let Some(body) = &fault.body {
            let content_type = fault
                .content_type
                .clone()
                .unwrap_or_else(|| "application/json; charset=utf-8".into());
            let code = fault.code.as_deref().unwrap_or("raw");
            return Self::new(
                status,
                code,
                ReplyBody::Raw {
                    content_type,
                    body: body.clone(),
                },
            );
        }
        match (&fault.code, endpoint) {
            (None, _) => Self::new(
                status,
                "http_error",
                ReplyBody::Raw {
                    content_type: "text/html".into(),
                    body: GATEWAY_PAGE.into(),
                },
            ),
            (Some(code), SandboxEndpoint::Token | SandboxEndpoint::Revoke) => {
                Self::oauth_error(status, code, message)
            }
            (Some(code), SandboxEndpoint::Upload | SandboxEndpoint::Authorize) => {
                Self::text(status, code, message)
            }
            (Some(code), _) => Self::api_error(status, code, message),
        }
    }

    fn into_response(self) -> Response {
        if self.drop {
            // An error from the body stream makes hyper abort the connection: the client
            // sees its request sent and the answer lost.
            let stream = futures_util::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::other("sandbox drops the answer"))
            });
            return (StatusCode::OK, Body::from_stream(stream)).into_response();
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.body {
            ReplyBody::Json(value) => (
                status,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                value.to_string(),
            )
                .into_response(),
            ReplyBody::Text(text) => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                text,
            )
                .into_response(),
            ReplyBody::Raw { content_type, body } => {
                let mut response = (status, body).into_response();
                if let Ok(value) = HeaderValue::from_str(&content_type) {
                    response.headers_mut().insert(header::CONTENT_TYPE, value);
                }
                response
            }
            ReplyBody::Empty => status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// Applies the configured envelope variants to a `{data, error}` answer.
fn shape_envelope(shared: &Shared, reply: &mut Reply) {
    let ReplyBody::Json(body) = &mut reply.body else {
        return;
    };
    let Some(map) = body.as_object_mut() else {
        return;
    };
    if !map.get("error").is_some_and(Value::is_object) {
        return;
    }
    let envelope = shared.config().envelope.clone();
    if envelope.log_id_field != "log_id"
        && let Some(Value::Object(error)) = map.get_mut("error")
        && let Some(id) = error.remove("log_id")
    {
        error.insert(envelope.log_id_field.clone(), id);
    }
    if reply.code != "ok" {
        match envelope.error_data {
            ErrorData::Empty => {}
            ErrorData::Absent => {
                map.remove("data");
            }
            ErrorData::Null => {
                map.insert("data".into(), Value::Null);
            }
        }
    }
    if envelope.extra_fields {
        map.insert(
            "sandbox_extra".into(),
            json!({"note": "a field no client knows"}),
        );
        if let Some(Value::Object(data)) = map.get_mut("data") {
            data.insert("sandbox_extra".into(), json!(["unknown", 1]));
        }
    }
}

/// The bearer token of a request, if any.
pub(super) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Runs one endpoint: an injected fault answers instead of `real` (or after it, for a lost
/// answer that took effect), and the call is recorded with `token`'s fingerprint.
pub(super) async fn run(
    shared: &Arc<Shared>,
    endpoint: SandboxEndpoint,
    token: Option<&str>,
    real: impl Future<Output = Reply>,
) -> Response {
    let mut reply = match shared.take_fault(endpoint) {
        Some(fault) => {
            if fault.take_effect {
                // TikTok did the work; only the answer goes wrong.
                let _ = real.await;
            }
            if fault.drop_connection {
                let mut reply = Reply::empty(0, "dropped");
                reply.drop = true;
                reply
            } else {
                Reply::from_fault(&fault, endpoint)
            }
        }
        None => real.await,
    };
    if !matches!(endpoint, SandboxEndpoint::Token | SandboxEndpoint::Revoke) {
        shape_envelope(shared, &mut reply);
    }
    shared.record_call(CallRecord {
        seq: 0,
        endpoint,
        at: Timestamp::now(),
        token_fingerprint: token.map(fingerprint),
        http_status: if reply.drop { 0 } else { reply.status },
        code: reply.code.clone(),
        dropped: reply.drop,
        detail: reply.detail.clone(),
    });
    reply.into_response()
}

/// Who is calling: the holder of a valid access token.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub open_id: String,
    pub scopes: Vec<String>,
    /// Fingerprint of the token, for records and rate windows.
    pub fingerprint: String,
}

impl Caller {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

impl Shared {
    /// Checks the bearer token and books the call in its rate window.
    pub(super) fn authorize_call(
        &self,
        token: Option<&str>,
        endpoint: SandboxEndpoint,
    ) -> Result<Caller, Reply> {
        let invalid = || {
            Reply::api_error(
                self.status_for("access_token_invalid", 401),
                "access_token_invalid",
                "The access token is invalid or not found in the request.",
            )
        };
        let token = token.ok_or_else(invalid)?;
        let grant = {
            let state = self.state();
            state.access.get(token).cloned()
        };
        let grant = grant
            .filter(|g| g.expires > tokio::time::Instant::now())
            .ok_or_else(invalid)?;
        let fp = fingerprint(token);
        if !self.rate_admit(&fp, endpoint) {
            return Err(Reply::api_error(
                self.status_for("rate_limit_exceeded", 429),
                "rate_limit_exceeded",
                "Too many requests; the per-minute limit of this access token is reached.",
            ));
        }
        Ok(Caller {
            open_id: grant.open_id,
            scopes: grant.scopes,
            fingerprint: fp,
        })
    }

    /// `scope_not_authorized` unless the caller holds one of `scopes`.
    pub(super) fn require_scope(&self, caller: &Caller, scopes: &[&str]) -> Result<(), Reply> {
        if scopes.iter().any(|s| caller.has(s)) {
            return Ok(());
        }
        Err(Reply::api_error(
            self.status_for("scope_not_authorized", 401),
            "scope_not_authorized",
            &format!(
                "The user did not authorize the scope required: {}",
                scopes.join(" or ")
            ),
        ))
    }
}
