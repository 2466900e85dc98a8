//! What happens to a post after its init (tiktok-api.md §4.6–4.8, §10): the PULL_FROM_URL
//! download (really fetched over HTTPS, no redirects, with `downloaded_bytes` growing), the
//! processing and moderation delays, the terminal status (PUBLISH_COMPLETE with 19-digit ids
//! for public posts, SEND_TO_USER_INBOX for drafts, FAILED with a `fail_reason`), plus the
//! `status/fetch` and `cancel` endpoints that read and interrupt it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::config::SandboxEndpoint;
use super::media_check;
use super::records::{CancelRecord, DownloadRecord};
use super::reply::{self, Reply, bearer};
use super::state::State as Memory;
use super::state::{Media, Shared, post_id};

/// Starts the pull and processing of a PULL_FROM_URL post.
pub(super) fn spawn(shared: Arc<Shared>, publish_id: String) {
    tokio::spawn(async move {
        if let Err(reason) = pull_all(&shared, &publish_id).await {
            shared.set_status(&publish_id, "FAILED", Some(&reason));
            return;
        }
        complete(&shared, &publish_id).await;
    });
}

/// Starts processing a FILE_UPLOAD post whose last chunk arrived.
pub(super) fn spawn_after_upload(shared: Arc<Shared>, publish_id: String) {
    tokio::spawn(async move { complete(&shared, &publish_id).await });
}

/// Processing delay, then the terminal status, then (public posts) moderation and the ids.
async fn complete(shared: &Shared, publish_id: &str) {
    let (processing, moderation) = {
        let c = shared.config();
        (
            Duration::from_millis(c.processing_delay_ms),
            Duration::from_millis(c.moderation_delay_ms),
        )
    };
    let Some((cancel, forced_fail, direct, public)) =
        shared.state().post_mut(publish_id).map(|p| {
            (
                p.cancel.clone(),
                p.forced_fail.clone(),
                p.record.direct,
                p.record.privacy_level.as_deref() == Some("PUBLIC_TO_EVERYONE"),
            )
        })
    else {
        return;
    };
    if cancelled_after(&cancel, processing).await {
        return;
    }
    if let Some(reason) = forced_fail {
        shared.set_status(publish_id, "FAILED", Some(&reason));
        return;
    }
    if let Some(reason) = media_verdict(shared, publish_id) {
        tracing::info!(%publish_id, reason, "sandbox processing refused the media");
        shared.set_status(publish_id, "FAILED", Some(reason));
        return;
    }
    if !direct {
        shared.set_status(publish_id, "SEND_TO_USER_INBOX", None);
        return;
    }
    shared.set_status(publish_id, "PUBLISH_COMPLETE", None);
    if !public || cancelled_after(&cancel, moderation).await {
        return;
    }
    if let Some(post) = shared.state().post_mut(publish_id) {
        post.record.post_ids.push(post_id());
    }
    shared.notify();
}

/// What processing's media checks say of the post's files (`None`: fine, off, or too large
/// to have been kept).
fn media_verdict(shared: &Shared, publish_id: &str) -> Option<&'static str> {
    if !shared.config().check_media {
        return None;
    }
    let state = shared.state();
    let post = state
        .posts
        .iter()
        .find(|p| p.record.publish_id == publish_id)?;
    let photo = post.record.photo;
    post.received
        .as_ref()?
        .iter()
        .find_map(|file| media_check::verdict(file, photo))
}

/// Sleeps `delay` unless `cancel` fires first (then `true`).
async fn cancelled_after(cancel: &tokio_util::sync::CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(delay) => false,
    }
}

/// Downloads every URL of the post in order; `Err` is the fail_reason.
async fn pull_all(shared: &Arc<Shared>, publish_id: &str) -> Result<(), String> {
    let Some((urls, cancel, photo, forced, created)) = shared
        .state()
        .post_mut(publish_id)
        .and_then(|p| match &p.media {
            Media::Pull { urls } => Some((
                urls.clone(),
                p.cancel.clone(),
                p.record.photo,
                p.forced_pull_failure,
                p.created,
            )),
            Media::Upload { .. } => None,
        })
    else {
        return Ok(());
    };
    let reason = if photo {
        "photo_pull_failed"
    } else {
        "video_pull_failed"
    };
    let (timeout, delay) = {
        let c = shared.config();
        (
            Duration::from_millis(c.pull_timeout_ms),
            Duration::from_millis(c.pull_delay_ms),
        )
    };
    // TikTok's hour counts from the init, queueing included (tiktok-api.md §4.6, §7.2).
    let deadline = created + timeout;
    let late = async {
        tokio::time::sleep_until(deadline).await;
        Err::<(), String>("the download did not finish within the pull timeout of the init".into())
    };
    let queued = async {
        if cancelled_after(&cancel, delay).await {
            return true;
        }
        while shared.config().hold_pulls {
            if cancelled_after(&cancel, Duration::from_millis(50)).await {
                return true;
            }
        }
        false
    };
    tokio::select! {
        cancelled = queued => if cancelled { return Ok(()) },
        r = late => {
            tracing::info!(%publish_id, "sandbox pull timed out before it started");
            return r.map_err(|_| reason.to_string());
        }
    }
    let mut done_bytes = 0;
    for url in urls {
        let index = {
            let mut state = shared.state();
            state.records.downloads.push(DownloadRecord {
                publish_id: publish_id.to_string(),
                url: url.clone(),
                started_at: Timestamp::now(),
                finished_at: None,
                http_status: None,
                expected_bytes: None,
                bytes: 0,
                sha256: None,
                error: None,
            });
            state.records.downloads.len() - 1
        };
        let result = if forced {
            Err("pull failure injected by the sandbox".to_string())
        } else {
            tokio::select! {
                () = cancel.cancelled() => Err("cancelled".to_string()),
                r = tokio::time::timeout_at(deadline, download(shared, publish_id, index, &url, done_bytes)) => {
                    r.unwrap_or_else(|_| Err("the download did not finish within the pull timeout of the init".into()))
                }
            }
        };
        let mut state = shared.state();
        let record = &mut state.records.downloads[index];
        record.finished_at = Some(Timestamp::now());
        if let Err(error) = &result {
            record.error = Some(error.clone());
        }
        done_bytes += record.bytes;
        let sha = record.sha256.clone();
        if let (Ok(()), Some(sha), Some(post)) = (&result, sha, state.post_mut(publish_id)) {
            post.record.media_sha256.push(sha);
        }
        drop(state);
        shared.notify();
        if let Err(error) = result {
            tracing::info!(%publish_id, %error, "sandbox pull failed");
            return Err(reason.to_string());
        }
    }
    Ok(())
}

/// One GET, streamed: updates the record and the post's `downloaded_bytes` as bytes arrive.
async fn download(
    shared: &Arc<Shared>,
    publish_id: &str,
    index: usize,
    url: &str,
    done_bytes: u64,
) -> Result<(), String> {
    let client = puller(shared)?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = response.status();
    {
        let mut state = shared.state();
        state.records.downloads[index].http_status = Some(status.as_u16());
        state.records.downloads[index].expected_bytes = response.content_length();
    }
    if status.is_redirection() {
        return Err(format!("HTTP {status}: redirects are refused"));
    }
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut kept = Some(Vec::new());
    let rate = shared.config().pull_bytes_per_sec.filter(|&r| r > 0);
    let started = tokio::time::Instant::now();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("body broken: {}", e.without_url()))?
    {
        if let Some(rate) = rate {
            // A slow puller: the bytes so far may not arrive before bytes/rate seconds.
            let due = started
                + Duration::from_secs_f64((bytes + chunk.len() as u64) as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
        }
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
        kept = kept
            .filter(|k| k.len() + chunk.len() <= media_check::MAX_CHECKED_BYTES)
            .map(|mut k| {
                k.extend_from_slice(&chunk);
                k
            });
        let mut state = shared.state();
        state.records.downloads[index].bytes = bytes;
        if let Some(post) = state.post_mut(publish_id) {
            post.record.downloaded_bytes = done_bytes + bytes;
        }
        drop(state);
        shared.notify();
    }
    let mut state = shared.state();
    state.records.downloads[index].sha256 = Some(hex::encode(hasher.finalize()));
    if let Some(post) = state.post_mut(publish_id) {
        post.received = match (post.received.take(), kept) {
            (Some(mut files), Some(file)) => {
                files.push(file);
                Some(files)
            }
            _ => None,
        };
    }
    Ok(())
}

/// The puller's client: https only, no redirects, trusting the configured extra CA.
fn puller(shared: &Shared) -> Result<reqwest::Client, String> {
    let key = {
        let c = shared.config();
        (c.extra_ca_pem.clone(), c.extra_ca_file.clone())
    };
    let mut slot = shared.puller.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((built_for, client)) = slot.as_ref()
        && *built_for == key
    {
        return Ok(client.clone());
    }
    // ring, as for the emulator's own TLS; harmless when a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent("tokdrop-sandbox-puller");
    let mut pems = Vec::new();
    if let Some(pem) = &key.0 {
        pems.push(pem.as_bytes().to_vec());
    }
    if let Some(path) = &key.1 {
        pems.push(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    for pem in pems {
        for cert in
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("extra CA: {e}"))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| format!("puller: {e}"))?;
    *slot = Some((key, client.clone()));
    Ok(client)
}

/// How much of the post's current download has arrived, in percent (0 before it started or
/// when the size is unknown).
fn download_share_percent(state: &Memory, publish_id: &str) -> u64 {
    state
        .records
        .downloads
        .iter()
        .rev()
        .find(|d| d.publish_id == publish_id)
        .and_then(|d| Some(d.bytes * 100 / d.expected_bytes.filter(|&n| n > 0)?))
        .unwrap_or(0)
}

/// The body of status/fetch and cancel: `{"publish_id": "..."}`.
struct PublishIdBody {
    publish_id: String,
}

impl PublishIdBody {
    fn parse(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let publish_id = value.get("publish_id")?.as_str()?.to_string();
        Some(Self { publish_id })
    }
}

/// Reads the caller and the post a `{publish_id}` body names.
fn owned_post(
    shared: &Shared,
    endpoint: SandboxEndpoint,
    token: Option<&str>,
    body: &PublishIdBody,
) -> Result<(), Reply> {
    let caller = shared.authorize_call(token, endpoint)?;
    shared.require_scope(&caller, &["video.publish", "video.upload"])?;
    let ttl = shared.config().publish_id_ttl_secs.map(Duration::from_secs);
    let owner = shared
        .state()
        .post_mut(&body.publish_id)
        .filter(|p| !p.forgotten && ttl.is_none_or(|ttl| p.created.elapsed() < ttl))
        .map(|p| p.record.open_id.clone());
    match owner {
        None => Err(Reply::api_error(
            shared.status_for("invalid_publish_id", 400),
            "invalid_publish_id",
            "The publish_id does not exist.",
        )),
        Some(owner) if owner != caller.open_id => Err(Reply::api_error(
            shared.status_for("token_not_authorized_for_specified_publish_id", 400),
            "token_not_authorized_for_specified_publish_id",
            "The publish_id belongs to another user.",
        )),
        Some(_) => Ok(()),
    }
}

pub(super) async fn status_fetch(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = bearer(&headers);
    let endpoint = SandboxEndpoint::StatusFetch;
    reply::run(&shared, endpoint, token.as_deref(), async {
        let Some(body) = PublishIdBody::parse(&body) else {
            return Reply::api_error(400, "invalid_publish_id", "publish_id is required.");
        };
        if let Err(reply) = owned_post(&shared, endpoint, token.as_deref(), &body) {
            return reply;
        }
        let mut state = shared.state();
        let Some(post) = state.post_mut(&body.publish_id) else {
            return Reply::api_error(400, "invalid_publish_id", "The publish_id does not exist.");
        };
        let r = &post.record;
        let upload = r.source == "FILE_UPLOAD";
        let config = shared.config();
        let nulls = config.envelope.explicit_nulls;
        let status = config.status_names.get(&r.status).unwrap_or(&r.status);
        let mut data = serde_json::json!({ "status": status });
        data["fail_reason"] = match &r.fail_reason {
            Some(reason) => reason.as_str().into(),
            None if nulls => serde_json::Value::Null,
            None => serde_json::Value::String(String::new()),
        };
        data["publicaly_available_post_id"] = if r.post_ids.is_empty() && nulls {
            serde_json::Value::Null
        } else {
            r.post_ids.clone().into()
        };
        if upload {
            data["uploaded_bytes"] = r.uploaded_bytes.into();
        } else {
            data["downloaded_bytes"] = r.downloaded_bytes.into();
        }
        Reply::ok(data)
    })
    .await
}

pub(super) async fn cancel(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = bearer(&headers);
    let endpoint = SandboxEndpoint::Cancel;
    reply::run(&shared, endpoint, token.as_deref(), async {
        let Some(body) = PublishIdBody::parse(&body) else {
            return Reply::api_error(400, "invalid_publish_id", "publish_id is required.");
        };
        if let Err(reply) = owned_post(&shared, endpoint, token.as_deref(), &body) {
            return reply;
        }
        // Best effort (tiktok-api.md §4.8): only while downloading, not near completion.
        let limit = u64::from(shared.config().cancel_refused_after_percent.min(100));
        let mut state = shared.state();
        let Some(post) = state.post_mut(&body.publish_id) else {
            return Reply::api_error(400, "invalid_publish_id", "The publish_id does not exist.");
        };
        let before = post.record.status.clone();
        let downloaded = post.record.downloaded_bytes;
        // Every file arrived: the post is processing now, whether or not the media server
        // announced a Content-Length to measure "near completion" by.
        let pulled = matches!(&post.media, Media::Pull { urls } if post.record.media_sha256.len() >= urls.len());
        let near_end = pulled || download_share_percent(&state, &body.publish_id) >= limit;
        let cancellable = before == "PROCESSING_DOWNLOAD" && !near_end;
        let code = if cancellable {
            "ok"
        } else {
            "publish_not_cancellable"
        };
        let seq = state.next_seq();
        state.records.cancels.push(CancelRecord {
            seq,
            publish_id: body.publish_id.clone(),
            at: Timestamp::now(),
            code: code.into(),
            status_before: before,
            downloaded_bytes: downloaded,
        });
        drop(state);
        if !cancellable {
            return Reply::api_error(
                shared.status_for("publish_not_cancellable", 400),
                "publish_not_cancellable",
                "The post is no longer downloading and cannot be cancelled.",
            );
        }
        shared.set_status(&body.publish_id, "FAILED", Some("publish_cancelled"));
        Reply::ok_without_data()
    })
    .await
}
