//! Request routing and path validation: `/healthz`, `/media/<token>/<name>`
//! (token looked up before any file-system access, name compared exactly
//! after one percent-decoding) and root-level verification files. Every
//! refusal is the same small 404; nothing redirects or lists.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::body::{AccessLog, Delivery, ServeBody};
use super::files;
use super::identity;
use super::registry::{Registry, TOKEN_LEN, check_name};

/// Longest request path considered at all, in bytes.
const MAX_PATH_LEN: usize = 1024;

/// What the router needs, shared by all connections.
pub(crate) struct AppState {
    pub(crate) registry: Registry,
    pub(crate) verification_dir: Option<PathBuf>,
    pub(crate) oauth_callback: Option<(String, PathBuf)>,
}

/// Handles one request and attaches its access-log line to the body.
/// `valued` is set when the request names media with a valid token (the connection then
/// keeps its slot, see `slots`).
pub(crate) async fn handle<B>(
    state: &AppState,
    req: Request<B>,
    peer: SocketAddr,
    valued: &AtomicBool,
) -> Response<ServeBody> {
    let started = Instant::now();
    let (req, body) = req.into_parts();
    drop(body); // GET and HEAD carry no body worth reading
    let method = req.method.clone();
    let log_path = redact(req.uri.path());
    let range = req.headers.get(header::RANGE).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(100)
            .collect()
    });
    let mut resp = route(state, &req, valued).await;
    if method == Method::HEAD {
        // No body on a HEAD answer (HTTP/2 resets a stream that sends one); the length stays.
        if let Some(len) = resp.body_mut().drop_static() {
            resp.headers_mut()
                .entry(header::CONTENT_LENGTH)
                .or_insert_with(|| HeaderValue::from(len));
        }
    }
    let log = AccessLog {
        method,
        path: log_path,
        range,
        peer,
        version: req.version,
        status: resp.status().as_u16(),
        started,
    };
    resp.body_mut().set_log(log);
    resp
}

async fn route(state: &AppState, req: &Parts, valued: &AtomicBool) -> Response<ServeBody> {
    let path = req.uri.path();
    if path.len() > MAX_PATH_LEN {
        return not_found();
    }
    let get_or_head = req.method == Method::GET || req.method == Method::HEAD;
    if path == "/healthz" {
        if !get_or_head {
            return method_not_allowed();
        }
        return text(StatusCode::OK, "ok\n");
    }
    if let Some((callback, state_dir)) = &state.oauth_callback
        && path == callback
    {
        if req.method != Method::GET {
            return method_not_allowed();
        }
        return oauth_callback(state_dir, req.uri.query().unwrap_or("")).await;
    }
    if let Some(rest) = path.strip_prefix("/media/") {
        return media(state, req, rest, get_or_head, valued).await;
    }
    match (&state.verification_dir, path.strip_prefix('/')) {
        (Some(dir), Some(raw)) if get_or_head => verification(dir, req, raw).await,
        _ => not_found(),
    }
}

/// The Web-platform login's redirect: handed to the waiting `auth login`, which checks it.
async fn oauth_callback(state_dir: &Path, query: &str) -> Response<ServeBody> {
    let (dir, query) = (state_dir.to_path_buf(), query.to_string());
    let delivered =
        tokio::task::spawn_blocking(move || crate::serve::handoff::deliver(&dir, &query)).await;
    match delivered {
        Ok(Ok(crate::serve::handoff::Delivered::Handed)) => text(
            StatusCode::OK,
            "tokdrop: TikTok's answer was handed to `tokdrop auth login`. You can close this tab and return to the terminal.\n",
        ),
        Ok(Ok(crate::serve::handoff::Delivered::NobodyWaiting)) => text(
            StatusCode::BAD_REQUEST,
            "tokdrop: no `tokdrop auth login` is waiting for this answer (it was already used, or the command timed out or was stopped). Run tokdrop auth login again.\n",
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot hand a login redirect to auth login");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "tokdrop: the login answer could not be handed over; see the service log, then run tokdrop auth login again.\n",
            )
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "tokdrop: internal error\n",
        ),
    }
}

async fn media(
    state: &AppState,
    req: &Parts,
    rest: &str,
    get_or_head: bool,
    valued: &AtomicBool,
) -> Response<ServeBody> {
    let Some((token, raw_name)) = rest.split_once('/') else {
        return not_found();
    };
    if !is_token(token) {
        return not_found();
    }
    let Some((item, index)) = state.registry.lookup(token) else {
        return not_found();
    };
    valued.store(true, Ordering::Relaxed);
    let Some(served) = item.files.get(index) else {
        return not_found();
    };
    match decode_segment(raw_name) {
        Some(name) if name == served.name => {}
        _ => return not_found(),
    }
    if !get_or_head {
        return method_not_allowed();
    }
    item.note_request(index);
    let (file, identity) = match identity::open_async(&served.path).await {
        Ok(opened) if opened.1 == served.identity => opened,
        outcome => {
            item.note_changed();
            tracing::warn!(
                item = %item.id,
                file = %served.name,
                reason = %match &outcome { Ok(_) => "size, mtime or inode changed".to_owned(), Err(e) => e.to_string() },
                "refusing to serve a file that changed since it was claimed"
            );
            return not_found();
        }
    };
    let delivery = Delivery {
        item: item.clone(),
        index,
    };
    files::respond(
        &req.method,
        &req.headers,
        file,
        &identity,
        &served.name,
        Some(delivery),
    )
}

async fn verification(dir: &Path, req: &Parts, raw: &str) -> Response<ServeBody> {
    let Some(name) = decode_segment(raw) else {
        return not_found();
    };
    if !is_verification_name(&name) {
        return not_found();
    }
    match identity::open_async(&dir.join(&name)).await {
        Ok((file, id)) => files::respond(&req.method, &req.headers, file, &id, &name, None),
        Err(_) => not_found(),
    }
}

/// TikTok's URL-prefix verification files are `tiktok<letters and digits>.txt`; nothing
/// else in the folder is served, whatever else lands there.
fn is_verification_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .strip_prefix("tiktok")
            .and_then(|n| n.strip_suffix(".txt"))
            .is_some_and(|middle| {
                !middle.is_empty() && middle.bytes().all(|b| b.is_ascii_alphanumeric())
            })
}

/// 32 lowercase hex digits.
fn is_token(s: &str) -> bool {
    s.len() == TOKEN_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decodes one path segment once. `None` for malformed escapes, invalid
/// UTF-8, or a result that is not a plain file name (slashes, backslashes,
/// control characters, NUL, dot segments).
pub(crate) fn decode_segment(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
        }
    }
    let name = percent_decode_str(raw).decode_utf8().ok()?;
    check_name(&name).ok()?;
    Some(name.into_owned())
}

/// The path with a media token cut to its first 6 characters.
fn redact(path: &str) -> String {
    let path: String = path.chars().take(MAX_PATH_LEN).collect();
    let Some(rest) = path.strip_prefix("/media/") else {
        return path;
    };
    let (token, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let short: String = token.chars().take(6).collect();
    let sep = if rest.contains('/') { "/" } else { "" };
    format!("/media/{short}…{sep}{tail}")
}

fn text(status: StatusCode, body: &'static str) -> Response<ServeBody> {
    let mut resp = Response::new(ServeBody::text(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    resp
}

fn not_found() -> Response<ServeBody> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

fn method_not_allowed() -> Response<ServeBody> {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments decode once; anything that is not a plain name is refused.
    #[test]
    fn decode_segment_table() {
        let ok = [
            ("a.mp4", "a.mp4"),
            ("a%20b.mp4", "a b.mp4"),
            ("a%2520b", "a%20b"),
            ("%252e%252e", "%2e%2e"),
            ("%C3%A9t%C3%A9.mp4", "été.mp4"),
            ("%22q%22", "\"q\""),
        ];
        for (raw, want) in ok {
            assert_eq!(decode_segment(raw).as_deref(), Some(want), "{raw}");
        }
        let bad = [
            "", "..", ".", "%2e%2e", "%2E", "a%2fb", "a%2Fb", "a%5cb", "a\\b", "a%00b", "%", "%zz",
            "a%2", "%ff%fe", "a%0ab",
        ];
        for raw in bad {
            assert_eq!(decode_segment(raw), None, "{raw}");
        }
    }

    /// Tokens never reach the log in full.
    #[test]
    fn redact_shortens_tokens() {
        let t = "0123456789abcdef0123456789abcdef";
        assert_eq!(redact(&format!("/media/{t}/a.mp4")), "/media/012345…/a.mp4");
        assert_eq!(redact(&format!("/media/{t}")), "/media/012345…");
        assert_eq!(redact("/healthz"), "/healthz");
        assert!(is_token(t));
        assert!(!is_token(&t.to_uppercase()));
    }
}
