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
use super::records::DownloadRecord;
use super::reply::{self, Reply, bearer};
use super::state::{Media, Shared, post_id};
use crate::tiktok::wire::{PublishIdBody, StatusData};

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

/// Sleeps `delay` unless `cancel` fires first (then `true`).
async fn cancelled_after(cancel: &tokio_util::sync::CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(delay) => false,
    }
}

/// Downloads every URL of the post in order; `Err` is the fail_reason.
async fn pull_all(shared: &Arc<Shared>, publish_id: &str) -> Result<(), String> {
    let Some((urls, cancel, photo, forced)) =
        shared
            .state()
            .post_mut(publish_id)
            .and_then(|p| match &p.media {
                Media::Pull { urls } => Some((
                    urls.clone(),
                    p.cancel.clone(),
                    p.record.photo,
                    p.forced_pull_failure,
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
    if cancelled_after(&cancel, delay).await {
        return Ok(());
    }
    while shared.config().hold_pulls {
        if cancelled_after(&cancel, Duration::from_millis(50)).await {
            return Ok(());
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
                r = tokio::time::timeout(timeout, download(shared, publish_id, index, &url, done_bytes)) => {
                    r.unwrap_or_else(|_| Err("the download took longer than the pull timeout".into()))
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
    shared.state().records.downloads[index].http_status = Some(status.as_u16());
    if status.is_redirection() {
        return Err(format!("HTTP {status}: redirects are refused"));
    }
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("body broken: {}", e.without_url()))?
    {
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
        let mut state = shared.state();
        state.records.downloads[index].bytes = bytes;
        if let Some(post) = state.post_mut(publish_id) {
            post.record.downloaded_bytes = done_bytes + bytes;
        }
        drop(state);
        shared.notify();
    }
    shared.state().records.downloads[index].sha256 = Some(hex::encode(hasher.finalize()));
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
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
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

/// Reads the caller and the post a `{publish_id}` body names.
fn owned_post(
    shared: &Shared,
    endpoint: SandboxEndpoint,
    token: Option<&str>,
    body: &PublishIdBody,
) -> Result<(), Reply> {
    let caller = shared.authorize_call(token, endpoint)?;
    shared.require_scope(&caller, &["video.publish", "video.upload"])?;
    let owner = shared
        .state()
        .post_mut(&body.publish_id)
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
        let Ok(body) = serde_json::from_slice::<PublishIdBody>(&body) else {
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
        let data = StatusData {
            status: r.status.clone(),
            fail_reason: r.fail_reason.clone(),
            publicaly_available_post_id: r.post_ids.clone(),
            uploaded_bytes: upload.then_some(r.uploaded_bytes),
            downloaded_bytes: (!upload).then_some(r.downloaded_bytes),
        };
        Reply::ok(serde_json::to_value(data).unwrap_or_default())
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
        let Ok(body) = serde_json::from_slice::<PublishIdBody>(&body) else {
            return Reply::api_error(400, "invalid_publish_id", "publish_id is required.");
        };
        if let Err(reply) = owned_post(&shared, endpoint, token.as_deref(), &body) {
            return reply;
        }
        let downloading = shared
            .state()
            .post_mut(&body.publish_id)
            .is_some_and(|p| p.record.status == "PROCESSING_DOWNLOAD");
        if !downloading {
            return Reply::api_error(
                shared.status_for("publish_not_cancellable", 400),
                "publish_not_cancellable",
                "The post is no longer downloading and cannot be cancelled.",
            );
        }
        shared.set_status(&body.publish_id, "FAILED", Some("publish_cancelled"));
        Reply::ok(serde_json::json!({}))
    })
    .await
}
