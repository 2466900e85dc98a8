//! `PUT <upload_url>` (tiktok-api.md §4.5): the emulator hands out upload URLs pointing at
//! itself (`{base}/upload/?upload_id=..&upload_token=..`, valid `upload_url_secs`), takes the
//! chunks of the init's plan strictly in order, hashes the file as it arrives, and answers
//! 206/201 with a `Content-Range: bytes 0-N/TOTAL` progress header, or 400/403/404/416.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::StreamExt;
use jiff::Timestamp;
use sha2::Digest;
use tokio::time::Instant;

use super::config::SandboxEndpoint;
use super::processing;
use super::records::UploadRecord;
use super::reply::{self, Reply};
use super::state::{Media, Shared};

/// Accepted video content types.
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];

/// `bytes FIRST-LAST/TOTAL`.
fn parse_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, total) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (first <= last && last < total).then_some((first, last, total))
}

pub(super) async fn put(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply::run(&shared, SandboxEndpoint::Upload, None, async {
        let mut held = false;
        while shared.config().hold_uploads && !shared.shutdown.is_cancelled() {
            held = true;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if held {
            return Reply::text(504, "http_error", "the upload link timed out");
        }
        let range = headers
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (publish_id, reply, bytes) =
            chunk(&shared, &query, &headers, range.as_deref(), body).await;
        let mut state = shared.state();
        state.records.uploads.push(UploadRecord {
            publish_id,
            at: Timestamp::now(),
            content_range: range,
            bytes,
            http_status: reply.status,
        });
        reply
    })
    .await
}

/// Handles one chunk: `(publish_id, answer, bytes read)`.
async fn chunk(
    shared: &Arc<Shared>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    range: Option<&str>,
    body: Body,
) -> (Option<String>, Reply, u64) {
    let upload_id = query.get("upload_id").map(String::as_str).unwrap_or("");
    let token = query.get("upload_token").map(String::as_str).unwrap_or("");
    // Find the task and check the request against its progress, without holding the lock
    // across the body read.
    let checked = {
        let mut state = shared.state();
        let post = state.posts.iter_mut().find(|p| {
            matches!(&p.media, Media::Upload { upload_id: id, upload_token, .. }
                if id == upload_id && upload_token == token)
        });
        let Some(post) = post else {
            return (
                None,
                Reply::text(404, "upload_not_found", "no upload task"),
                0,
            );
        };
        let publish_id = post.record.publish_id.clone();
        let uploaded = post.record.uploaded_bytes;
        let Media::Upload {
            plan,
            expires,
            hasher,
            ..
        } = &post.media
        else {
            return (
                None,
                Reply::text(404, "upload_not_found", "no upload task"),
                0,
            );
        };
        if *expires <= Instant::now() {
            return (
                Some(publish_id),
                Reply::text(403, "upload_url_expired", "upload_url expired"),
                0,
            );
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some((first, last, total)) = range.and_then(parse_range) else {
            return (
                Some(publish_id),
                Reply::text(400, "bad_request", "malformed Content-Range"),
                0,
            );
        };
        if !VIDEO_TYPES.contains(&content_type) || total != plan.video_size {
            return (
                Some(publish_id),
                Reply::text(400, "bad_request", "bad Content-Type or total size"),
                0,
            );
        }
        let expected = plan.range_starting_at(uploaded);
        if post.record.status != "PROCESSING_UPLOAD" || expected != Some((first, last)) {
            let progress = progress_header(uploaded, plan.video_size);
            return (
                Some(publish_id),
                Reply::text(
                    416,
                    "range_mismatch",
                    "Content-Range does not match the upload progress",
                )
                .with_header(header::CONTENT_RANGE, progress),
                0,
            );
        }
        (publish_id, first, last, total, hasher.clone())
    };
    let (publish_id, first, last, total, mut hasher) = checked;
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    let mut kept = Vec::new();
    let keep = usize::try_from(total).is_ok_and(|t| t <= super::media_check::MAX_CHECKED_BYTES);
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(bytes) => {
                read += bytes.len() as u64;
                hasher.update(&bytes);
                if keep {
                    kept.extend_from_slice(&bytes);
                }
            }
            Err(_) => {
                return (
                    Some(publish_id),
                    Reply::text(400, "bad_request", "body broken"),
                    read,
                );
            }
        }
    }
    if read != last - first + 1 {
        return (
            Some(publish_id),
            Reply::text(400, "bad_request", "Content-Length does not match the body"),
            read,
        );
    }
    let complete = {
        let mut state = shared.state();
        let Some(post) = state.post_mut(&publish_id) else {
            return (
                Some(publish_id),
                Reply::text(404, "upload_not_found", "gone"),
                read,
            );
        };
        if post.record.uploaded_bytes != first || post.record.status != "PROCESSING_UPLOAD" {
            return (
                Some(publish_id),
                Reply::text(416, "range_mismatch", "concurrent chunk"),
                read,
            );
        }
        post.record.uploaded_bytes = last + 1;
        post.received = post.received.take().filter(|_| keep).map(|mut files| {
            match files.first_mut() {
                Some(file) => file.extend_from_slice(&kept),
                None => files.push(kept),
            }
            files
        });
        let complete = last + 1 == total;
        if complete {
            let sha = hex::encode(hasher.clone().finalize());
            post.record.upload_sha256 = Some(sha.clone());
            post.record.media_sha256 = vec![sha];
        }
        if let Media::Upload { hasher: stored, .. } = &mut post.media {
            *stored = hasher;
        }
        complete
    };
    shared.notify();
    let progress = progress_header(last + 1, total);
    if complete {
        processing::spawn_after_upload(shared.clone(), publish_id.clone());
        (
            Some(publish_id),
            Reply::empty(201, "ok").with_header(header::CONTENT_RANGE, progress),
            read,
        )
    } else {
        (
            Some(publish_id),
            Reply::empty(206, "ok").with_header(header::CONTENT_RANGE, progress),
            read,
        )
    }
}

/// `bytes 0-{received-1}/{total}`; `bytes */{total}` before the first byte.
fn progress_header(received: u64, total: u64) -> String {
    if received == 0 {
        format!("bytes */{total}")
    } else {
        format!("bytes 0-{}/{total}", received - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content-Range values parse only when well formed and inside the total.
    #[test]
    fn content_range_parsing() {
        let cases = [
            ("bytes 0-9999999/50000123", Some((0, 9_999_999, 50_000_123))),
            (
                "bytes 40000000-50000122/50000123",
                Some((40_000_000, 50_000_122, 50_000_123)),
            ),
            ("bytes 5-4/10", None),
            ("bytes 0-10/10", None),
            ("0-9/10", None),
            ("bytes 0-9", None),
            ("bytes a-9/10", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_range(text), expected, "{text}");
        }
        assert_eq!(progress_header(10, 20), "bytes 0-9/20");
    }
}
