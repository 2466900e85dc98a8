//! Opening files safely (`O_NOFOLLOW`, regular files only, identity check)
//! and turning an open file into a full, partial, 416 or HEAD response with
//! exact validators and a bounded-memory streaming body.

use std::fs::File;
use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

use super::body::{Delivery, ServeBody};
use super::identity::FileIdentity;
use super::range::{self, RangeDecision};

/// `Content-Type` from the file extension.
pub(crate) fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Strong ETag from size and mtime (to the nanosecond); no inode number leaves the machine.
pub(crate) fn etag(id: &FileIdentity) -> String {
    let mtime = id
        .mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{:x}-{:x}\"", id.size, mtime)
}

/// Builds the response for an opened file. `delivery` (for registered
/// media) is told how many bytes actually went out.
pub(crate) fn respond(
    method: &Method,
    req_headers: &HeaderMap,
    file: File,
    id: &FileIdentity,
    name: &str,
    delivery: Option<Delivery>,
) -> Response<ServeBody> {
    let etag = etag(id);
    let size = id.size;
    let decision = if method == Method::GET {
        range::evaluate(
            req_headers.get(header::RANGE).map(HeaderValue::as_bytes),
            req_headers.get(header::IF_RANGE).map(HeaderValue::as_bytes),
            &etag,
            id.mtime,
            size,
        )
    } else {
        RangeDecision::Full // RFC 9110 §14.2: Range is defined for GET only
    };
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::LAST_MODIFIED, httpdate::fmt_http_date(id.mtime))
        .header(header::ETAG, etag)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let (status, start, len) = match decision {
        RangeDecision::Full => (StatusCode::OK, 0, size),
        RangeDecision::Partial { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeDecision::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(ServeBody::text("range not satisfiable\n"))
                .unwrap_or_else(|_| super::body::plain(StatusCode::RANGE_NOT_SATISFIABLE));
        }
    };
    let body = if method == Method::HEAD {
        ServeBody::empty()
    } else {
        ServeBody::file(file, start, len, delivery)
    };
    builder
        .status(status)
        .header(header::CONTENT_TYPE, content_type(name))
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .unwrap_or_else(|_| super::body::plain(StatusCode::INTERNAL_SERVER_ERROR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::identity::open_nofollow;
    use std::os::unix::fs::symlink;

    /// Content types follow the extension, case-insensitively.
    #[test]
    fn content_types() {
        assert_eq!(content_type("a.MP4"), "video/mp4");
        assert_eq!(content_type("a.b.mov"), "video/quicktime");
        assert_eq!(content_type("x.jpeg"), "image/jpeg");
        assert_eq!(content_type("x.webp"), "image/webp");
        assert_eq!(content_type("x.webm"), "video/webm");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    /// A symlink or a directory is never opened as a served file.
    #[test]
    fn nofollow_refuses_symlinks_and_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        std::fs::write(&real, b"data").expect("write");
        let link = dir.path().join("link");
        symlink(&real, &link).expect("symlink");
        assert!(open_nofollow(&real).is_ok());
        assert!(open_nofollow(&link).is_err());
        assert!(open_nofollow(dir.path()).is_err());
    }
}
