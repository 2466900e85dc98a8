//! FILE_UPLOAD transfer (tiktok-api.md §4.5): sequential chunk PUTs to the opaque `upload_url`,
//! streamed from disk (a chunk is never held in memory), each retried on 5xx or a broken
//! connection as the docs ask (quirk 11). The upload URL carries an upload token, so it never
//! appears in logs or errors.

use std::io::SeekFrom;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::chunks::{Chunk, ChunkPlan};
use super::client::{Client, transport_failure};
use super::error::{ApiError, Endpoint, ErrorClass, codes};

/// TikTok's answer to one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkAck {
    /// 206 (more expected) or 201 (all received).
    pub http_status: u16,
    /// Bytes TikTok reports received, from the `Content-Range` answer header.
    pub uploaded_bytes: Option<u64>,
}

impl ChunkAck {
    pub fn is_complete(&self) -> bool {
        self.http_status == 201
    }
}

/// Parses `bytes 0-LAST/TOTAL` into the number of bytes received (`LAST + 1`); `bytes */TOTAL`
/// (nothing received yet) is 0.
fn uploaded_bytes(header: &str) -> Option<u64> {
    let range = header.trim().strip_prefix("bytes ")?;
    let (span, _total) = range.split_once('/')?;
    if span.trim() == "*" {
        return Some(0);
    }
    let (_, last) = span.split_once('-')?;
    last.trim().parse::<u64>().ok().map(|l| l + 1)
}

/// A chunk PUT that failed, with TikTok's progress header when the answer had one.
struct ChunkFailure {
    error: ApiError,
    progress: Option<u64>,
}

fn file_error(message: String) -> ApiError {
    ApiError::transport(Endpoint::Upload, codes::FILE_READ, message)
}

impl Client {
    /// PUTs one chunk of `path` (one attempt).
    pub async fn upload_chunk(
        &self,
        upload_url: &str,
        path: &Path,
        plan: &ChunkPlan,
        chunk: Chunk,
        content_type: &str,
    ) -> Result<ChunkAck, ApiError> {
        self.put_chunk(upload_url, path, plan, chunk, content_type)
            .await
            .map_err(|f| f.error)
    }

    async fn put_chunk(
        &self,
        upload_url: &str,
        path: &Path,
        plan: &ChunkPlan,
        chunk: Chunk,
        content_type: &str,
    ) -> Result<ChunkAck, ChunkFailure> {
        let failed = |error: ApiError| ChunkFailure {
            error,
            progress: None,
        };
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| failed(file_error(format!("{}: {e}", path.display()))))?
            .len();
        if size != plan.video_size {
            return Err(failed(ApiError::transport(
                Endpoint::Upload,
                codes::FILE_CHANGED,
                format!(
                    "{} is {size} bytes now, {} when the upload was planned",
                    path.display(),
                    plan.video_size
                ),
            )));
        }
        let owned = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || crate::support::fsops::open_regular(&owned))
            .await
            .map_err(|e| failed(file_error(e.to_string())))?
            .map_err(|e| failed(file_error(format!("{}: {e}", path.display()))))?;
        let mut file = tokio::fs::File::from_std(file);
        file.seek(SeekFrom::Start(chunk.first_byte))
            .await
            .map_err(|e| failed(file_error(format!("{}: {e}", path.display()))))?;
        let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(
            file.take(chunk.len()),
            256 * 1024,
        ));
        let request = self
            .inner
            .http
            .put(upload_url)
            .timeout(self.inner.config.chunk_timeout)
            .header("Content-Type", content_type)
            .header("Content-Length", chunk.len())
            .header("Content-Range", chunk.content_range(plan.video_size))
            .body(body);
        let response = request
            .send()
            .await
            .map_err(|e| failed(transport_failure(Endpoint::Upload, e).into_error()))?;
        let status = response.status().as_u16();
        let uploaded = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(uploaded_bytes);
        match status {
            201 | 206 => Ok(ChunkAck {
                http_status: status,
                uploaded_bytes: uploaded,
            }),
            _ => {
                let code = match status {
                    400 => codes::UPLOAD_REJECTED,
                    403 => codes::UPLOAD_EXPIRED,
                    404 => codes::UPLOAD_NOT_FOUND,
                    416 => codes::UPLOAD_RANGE_MISMATCH,
                    _ => codes::HTTP_ERROR,
                };
                let text = response.text().await.unwrap_or_default();
                let error = ApiError {
                    http_status: Some(status),
                    ..ApiError::transport(
                        Endpoint::Upload,
                        code,
                        format!(
                            "chunk {} ({}) answered HTTP {status}{}{}",
                            chunk.index + 1,
                            chunk.content_range(plan.video_size),
                            if text.is_empty() { "" } else { ": " },
                            text.chars().take(200).collect::<String>()
                        ),
                    )
                };
                Err(ChunkFailure {
                    error,
                    progress: uploaded,
                })
            }
        }
    }

    /// Uploads the whole file chunk by chunk, in order; retries a chunk on 5xx or a broken
    /// connection. Succeeds when TikTok answered 201 to the last chunk.
    pub async fn upload_file(
        &self,
        upload_url: &str,
        path: &Path,
        plan: &ChunkPlan,
        content_type: &str,
    ) -> Result<(), ApiError> {
        self.upload_file_from(upload_url, path, plan, content_type, 0, &|_| {})
            .await
    }

    /// Uploads from byte `start` (0 for a new upload, or where an interrupted one may have
    /// stopped). A 416 whose progress header (tiktok-api.md §4.5) names a chunk boundary —
    /// TikTok stored a chunk whose answer was lost to a 5xx, or an earlier run got further —
    /// goes on from there; progress at the end of the file means TikTok has it all.
    /// `progress` hears how many bytes TikTok has acknowledged after every chunk.
    pub async fn upload_file_from(
        &self,
        upload_url: &str,
        path: &Path,
        plan: &ChunkPlan,
        content_type: &str,
        start: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), ApiError> {
        tracing::info!(%plan, start, "uploading by FILE_UPLOAD");
        let policy = self.inner.config.retry;
        let chunks: Vec<Chunk> = plan.chunks().collect();
        let resumable = |p: u64| p == plan.video_size || chunks.iter().any(|c| c.first_byte == p);
        let mismatch = |message: String, status: Option<u16>| ApiError {
            http_status: status,
            ..ApiError::transport(Endpoint::Upload, codes::UPLOAD_RANGE_MISMATCH, message)
        };
        let mut next = start;
        let mut jumps = 0;
        while next < plan.video_size {
            let Some(chunk) = chunks.iter().copied().find(|c| c.first_byte == next) else {
                return Err(mismatch(
                    format!("byte {next} does not start a chunk of {plan}"),
                    None,
                ));
            };
            let mut tries = 0;
            let ack = loop {
                tries += 1;
                let sent = self
                    .put_chunk(upload_url, path, plan, chunk, content_type)
                    .await;
                crate::support::metrics::metrics().tiktok_call(
                    Endpoint::Upload.name(),
                    sent.as_ref()
                        .map_or_else(|f| f.error.code.as_str(), |_| "ok"),
                );
                match sent {
                    Ok(ack) => break Some(ack),
                    Err(f)
                        if matches!(f.error.class(), ErrorClass::Transient { .. })
                            && tries < policy.chunk_attempts =>
                    {
                        tracing::warn!(chunk = chunk.index + 1, code = %f.error.code, http_status = ?f.error.http_status, "chunk failed, retrying it");
                        if !self
                            .pause(policy.delay(tries - 1, f.error.retry_after))
                            .await
                        {
                            return Err(f.error);
                        }
                    }
                    Err(f)
                        if f.error.code == codes::UPLOAD_RANGE_MISMATCH
                            && jumps <= chunks.len()
                            && f.progress.is_some_and(|p| p != next && resumable(p)) =>
                    {
                        let progress = f.progress.unwrap_or(next);
                        tracing::warn!(
                            chunk = chunk.index + 1,
                            progress,
                            total = plan.video_size,
                            "TikTok already holds the file up to this byte; going on from there"
                        );
                        jumps += 1;
                        next = progress;
                        break None;
                    }
                    Err(f) => return Err(f.error),
                }
            };
            let Some(ack) = ack else { continue };
            let last = chunk.index + 1 == plan.total_chunk_count;
            tracing::debug!(chunk = chunk.index + 1, status = ack.http_status, uploaded = ?ack.uploaded_bytes, "chunk accepted");
            if last != ack.is_complete() {
                return Err(mismatch(
                    format!(
                        "chunk {} of {} answered HTTP {}",
                        chunk.index + 1,
                        plan.total_chunk_count,
                        ack.http_status
                    ),
                    Some(ack.http_status),
                ));
            }
            next = chunk.last_byte + 1;
            progress(next);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The progress header reads as bytes received.
    #[test]
    fn progress_header_parses() {
        assert_eq!(uploaded_bytes("bytes 0-9999999/50000123"), Some(10_000_000));
        assert_eq!(
            uploaded_bytes("bytes 0-50000122/50000123"),
            Some(50_000_123)
        );
        assert_eq!(uploaded_bytes("bytes */50000123"), Some(0));
        assert_eq!(uploaded_bytes("garbage"), None);
    }
}
