//! The real publisher (SPEC §4 step 3–4): fresh creator_info, checks against it, journaled init
//! intent, init, journaled publish_id, media served (PULL_FROM_URL) or uploaded (FILE_UPLOAD),
//! status polled until terminal, URLs revoked. Transient errors are retried with back-off; an
//! init that may have reached TikTok is never sent again; account-wide conditions defer the job.
//! This is the async driver: what each answer means is decided in [`super::machine`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::machine::{
    Follow, FollowStep, api_failure, check_creator, failure, pause_reason, pull_failed,
};
use super::{Attempt, Job, PublishOutcome, Publisher};
use crate::config::Transfer;
use crate::media::MediaKind;
use crate::outcome::{ErrorStage, Fetched, PreviousAttempt, Status};
use crate::post::{self, Source};
use crate::serve::{ItemId, Registry, ServedFile};
use crate::sidecar::rules::Kind;
use crate::tiktok::api::InitKind;
use crate::tiktok::authorized::AuthorizedError;
use crate::tiktok::chunks::ChunkPlan;
use crate::tiktok::error::{ApiError, ErrorClass, InitError};
use crate::tiktok::tokens::TokenManager;

/// Publishes through the TikTok Content Posting API.
pub struct TikTokPublisher {
    pub tokens: Arc<TokenManager>,
    pub registry: Registry,
    pub public_url: url::Url,
    pub transfer: Transfer,
    pub publish_timeout: Duration,
    /// Stops polling at a safe point (the item resumes by publish_id after restart).
    pub cancel: CancellationToken,
}

/// How one attempt ended, before it becomes an outcome.
enum Step<T> {
    Ok(T),
    /// Stop here: the outcome is known (failure or unknown).
    Finish(Box<PublishOutcome>),
    /// Not now: account paused or service stopping.
    Later(String),
}

/// `?` for helpers that return a Step: passes Finish and Later up unchanged.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Step::Ok(v) => v,
            Step::Finish(o) => return Step::Finish(o),
            Step::Later(r) => return Step::Later(r),
        }
    };
}

macro_rules! step {
    ($e:expr) => {
        match $e {
            Step::Ok(v) => v,
            Step::Finish(o) => return Attempt::Done(o),
            Step::Later(r) => return Attempt::Later { reason: r },
        }
    };
}

impl TikTokPublisher {
    /// Runs `call` with a token, retrying transient failures with back-off until it succeeds,
    /// fails for good or the service stops.
    async fn call<T, F, Fut>(&self, job: &Job, stage: ErrorStage, mut call: F) -> Step<T>
    where
        F: FnMut(crate::tiktok::Secret) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut delay = Duration::from_secs(2);
        loop {
            let r = self.tokens.with_token(&job.record.account, &mut call).await;
            let class = match &r {
                Ok(_) => None,
                Err(e) => Some(e.class()),
            };
            match (r, class) {
                (Ok(v), _) => return Step::Ok(v),
                (Err(_), Some(ErrorClass::Transient { retry_after })) => {
                    let wait = retry_after.unwrap_or(delay);
                    delay = (delay * 2).min(Duration::from_secs(120));
                    tokio::select! {
                        () = self.cancel.cancelled() => return Step::Later("the service is stopping".into()),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                (Err(e), Some(ErrorClass::AccountWide(p))) => {
                    return Step::Later(pause_reason(p, &error_code(&e)));
                }
                (Err(e), Some(ErrorClass::Auth(_))) => {
                    return Step::Later(format!(
                        "paused: TikTok refused the authorization ({}) — run `tokdrop auth login`",
                        error_code(&e)
                    ));
                }
                (Err(e), _) => {
                    let api = match &e {
                        AuthorizedError::Call(a) | AuthorizedError::RejectedAfterRefresh(a) => {
                            a.clone()
                        }
                        AuthorizedError::Auth(a) => ApiError::transport(
                            crate::tiktok::error::Endpoint::CreatorInfo,
                            "authorization",
                            a.to_string(),
                        ),
                    };
                    return Step::Finish(api_failure(stage, &api));
                }
            }
        }
    }

    /// Serves the item's files and returns their URLs, in posting order. `resume`: under the
    /// tokens journaled with the publish_id, so the URLs TikTok has keep working.
    async fn expose(&self, job: &mut Job, resume: bool) -> Step<Vec<String>> {
        let files: Vec<(String, std::path::PathBuf)> = job
            .media
            .iter()
            .map(|p| {
                (
                    p.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    p.clone(),
                )
            })
            .collect();
        let snap = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|(n, p)| ServedFile::snapshot(n, p))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
        let served = match snap {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Step::Finish(failure(
                    Status::Failed,
                    ErrorStage::Transfer,
                    "file_unreadable",
                    format!("cannot open the media file: {e}"),
                    None,
                    "check the file and move it back into the watched folder".into(),
                ));
            }
            Err(e) => {
                return Step::Finish(failure(
                    Status::Failed,
                    ErrorStage::Transfer,
                    "internal",
                    e.to_string(),
                    None,
                    "retry".into(),
                ));
            }
        };
        let item = ItemId::new(job.record.id.clone());
        let registered = if resume && !job.url_tokens.is_empty() {
            tracing::info!(item = %job.record.item, "serving the media again under the links TikTok was given");
            self.registry
                .restore(item.clone(), served.clone(), job.url_tokens.clone())
                .or_else(|e| {
                    tracing::warn!(item = %job.record.item, "{e}; serving under new links, which TikTok does not know");
                    self.registry.register(item, served)
                })
        } else {
            self.registry.register(item, served)
        };
        match registered {
            Ok(published) => {
                job.url_tokens = published.iter().map(|p| p.token.clone()).collect();
                Step::Ok(
                    published
                        .into_iter()
                        .map(|p| format!("{}{}", self.public_url, p.url_path))
                        .collect(),
                )
            }
            Err(e) => Step::Finish(failure(
                Status::Failed,
                ErrorStage::Transfer,
                "cannot_serve",
                e.to_string(),
                None,
                "rename the file to a plain name and move it back".into(),
            )),
        }
    }

    /// Journals the intent, sends the init once, journals the publish_id.
    async fn init(
        &self,
        job: &mut Job,
        transfer: &str,
        source: Source<'_>,
    ) -> Step<(String, Option<String>)> {
        let request = post::init_request(&job.spec, source);
        let kind = InitKind::from_path(request.endpoint).unwrap_or(InitKind::Video);
        let mut delay = Duration::from_secs(5);
        loop {
            if let Err(e) = job.init_intent(transfer) {
                return Step::Later(format!("cannot write the journal: {e}"));
            }
            job.show_stage("init");
            let body = &request.body;
            let r = self
                .tokens
                .with_token(&job.record.account, |t| async move {
                    self.tokens.client().init(&t, kind, body).await
                })
                .await;
            match r {
                Ok(resp) => {
                    if let Err(e) = job.published(&resp.publish_id, transfer) {
                        tracing::error!(item = %job.record.item, publish_id = %resp.publish_id, "cannot journal the publish_id: {e}");
                    }
                    tracing::info!(item = %job.record.item, publish_id = %resp.publish_id, transfer, "init accepted");
                    return Step::Ok((resp.publish_id, resp.upload_url));
                }
                Err(
                    AuthorizedError::Call(InitError::MaybeSent(e))
                    | AuthorizedError::RejectedAfterRefresh(InitError::MaybeSent(e)),
                ) => {
                    return Step::Finish(failure(
                        Status::Unknown,
                        ErrorStage::Init,
                        &e.code,
                        format!("the publish request was sent but TikTok's answer was lost ({})", e.message),
                        e.log_id.clone(),
                        "look at the creator's TikTok profile (or inbox); if the post is not there, move the files back into the watched folder to try again".into(),
                    ));
                }
                Err(err) => {
                    // Nothing was created: the item is back to "claimed" in the journal.
                    if let Err(e) = job.init_refused() {
                        return Step::Later(format!("cannot write the journal: {e}"));
                    }
                    match err.class() {
                        ErrorClass::Transient { retry_after } => {
                            let wait = retry_after.unwrap_or(delay);
                            delay = (delay * 2).min(Duration::from_secs(300));
                            tokio::select! {
                                () = self.cancel.cancelled() => return Step::Later("the service is stopping".into()),
                                () = tokio::time::sleep(wait) => {}
                            }
                        }
                        ErrorClass::AccountWide(p) => {
                            return Step::Later(pause_reason(p, &error_code(&err)));
                        }
                        ErrorClass::Auth(_) => return Step::Later(
                            "paused: TikTok refused the authorization — run `tokdrop auth login`"
                                .into(),
                        ),
                        ErrorClass::Item { .. } => {
                            let api = match err {
                                AuthorizedError::Call(e)
                                | AuthorizedError::RejectedAfterRefresh(e) => e.api_error().clone(),
                                AuthorizedError::Auth(a) => ApiError::transport(
                                    crate::tiktok::error::Endpoint::CreatorInfo,
                                    "authorization",
                                    a.to_string(),
                                ),
                            };
                            return Step::Finish(api_failure(ErrorStage::Init, &api));
                        }
                    }
                }
            }
        }
    }

    /// Polls until a terminal status, the timeout, or the service stopping ([`Follow`] decides).
    async fn follow(
        &self,
        job: &Job,
        publish_id: &str,
        pulling: bool,
        creator: Option<&str>,
    ) -> Step<PublishOutcome> {
        let started = tokio::time::Instant::now();
        let public = job
            .spec
            .privacy_level
            .is_some_and(|p| p.as_str() == "PUBLIC_TO_EVERYONE");
        let mut follow = Follow::new(publish_id, creator, public, pulling, self.publish_timeout);
        let item = ItemId::new(job.record.id.clone());
        loop {
            let requested = self.registry.stats(&item).is_some_and(|s| s.requests > 0);
            let wait = match follow.next(started.elapsed(), requested) {
                FollowStep::Poll(wait) => wait,
                FollowStep::Done(o) => return Step::Ok(*o),
                FollowStep::Finish(o) => return Step::Finish(o),
            };
            tokio::select! {
                () = self.cancel.cancelled() => return Step::Later("the service is stopping; the post is followed again at the next start".into()),
                () = tokio::time::sleep(wait) => {}
            }
            let status = tri!(
                self.call(job, ErrorStage::Processing, |t| async move {
                    self.tokens.client().status_fetch(&t, publish_id).await
                })
                .await
            );
            let fetched = self.registry.stats(&item);
            job.board.update_flight(&job.record.account, |f| {
                f.stage = format!("processing (polled {}×)", follow.polls());
                f.publish_id = Some(publish_id.to_string());
                f.bytes_fetched = fetched
                    .as_ref()
                    .map(|s| s.bytes_sent)
                    .or(status.downloaded_bytes);
            });
            match follow.on_status(&status) {
                Some(FollowStep::Done(o)) => return Step::Ok(*o),
                Some(FollowStep::Finish(o)) => return Step::Finish(o),
                Some(FollowStep::Poll(_)) | None => {}
            }
        }
    }
}

fn error_code<E: std::fmt::Display>(e: &AuthorizedError<E>) -> String {
    match e {
        AuthorizedError::Auth(a) => a.to_string(),
        AuthorizedError::Call(c) | AuthorizedError::RejectedAfterRefresh(c) => c.to_string(),
    }
}

fn content_type(path: &Path) -> &'static str {
    MediaKind::from_path(path).map_or("video/mp4", |k| k.mime_type())
}

impl TikTokPublisher {
    async fn run(&self, job: &mut Job) -> Attempt {
        job.show_stage("creator_info");
        let info = step!(
            self.call(job, ErrorStage::Authorize, |t| async move {
                self.tokens.client().creator_info(&t).await
            })
            .await
        );
        let creator = Some(info.creator_username.clone());
        if let Some(publish_id) = job.publish_id().map(String::from) {
            let pulling = matches!(&job.record.stage, crate::journal::Stage::Published { transfer, .. } if transfer == "pull");
            if pulling {
                let _ = step!(self.expose(job, true).await);
            }
            let mut o = step!(
                self.follow(job, &publish_id, pulling, creator.as_deref())
                    .await
            );
            o.transfer = Some(if pulling { "pull" } else { "upload" }.to_string());
            return Attempt::Done(Box::new(self.with_fetched(job, o)));
        }
        let duration_ms = if job.spec.kind == Kind::Video {
            crate::media::probe(&job.media[0])
                .ok()
                .and_then(|i| i.duration_ms)
        } else {
            None
        };
        if let Err(o) = check_creator(&mut job.spec, &info, duration_ms) {
            return Attempt::Done(o);
        }
        let video = job.spec.kind == Kind::Video;
        let first = if video && self.transfer == Transfer::Upload {
            "upload"
        } else {
            "pull"
        };
        let mut previous = Vec::new();
        let mut transfer = first;
        loop {
            let attempt = if transfer == "pull" {
                self.pull_attempt(job, creator.as_deref()).await
            } else {
                self.upload_attempt(job, creator.as_deref()).await
            };
            match attempt {
                Step::Finish(o)
                    if video
                        && transfer == "pull"
                        && self.transfer == Transfer::Auto
                        && pull_failed(&o) =>
                {
                    tracing::warn!(item = %job.record.item, "the pull failed ({}); trying once more by FILE_UPLOAD", o.error.as_ref().map_or("", |e| e.code.as_str()));
                    previous.push(PreviousAttempt {
                        publish_id: o.publish_id.clone(),
                        transfer: "pull".into(),
                        fail_reason: o
                            .error
                            .as_ref()
                            .map_or_else(String::new, |e| e.code.clone()),
                    });
                    transfer = "upload";
                }
                Step::Finish(mut o) => {
                    o.transfer = Some(transfer.to_string());
                    o.previous_attempts = previous;
                    return Attempt::Done(Box::new(self.with_fetched(job, *o)));
                }
                Step::Later(r) => return Attempt::Later { reason: r },
                Step::Ok(mut o) => {
                    o.transfer = Some(transfer.to_string());
                    o.previous_attempts = previous;
                    return Attempt::Done(Box::new(self.with_fetched(job, o)));
                }
            }
        }
    }

    async fn pull_attempt(&self, job: &mut Job, creator: Option<&str>) -> Step<PublishOutcome> {
        let urls = tri!(self.expose(job, false).await);
        let (publish_id, _) = match self.init(job, "pull", Source::Pull(&urls)).await {
            Step::Ok(v) => v,
            Step::Finish(o) => return Step::Finish(o),
            Step::Later(r) => {
                self.registry.revoke(&ItemId::new(job.record.id.clone()));
                return Step::Later(r);
            }
        };
        self.follow(job, &publish_id, true, creator).await
    }

    async fn upload_attempt(&self, job: &mut Job, creator: Option<&str>) -> Step<PublishOutcome> {
        let path = job.media[0].clone();
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) => {
                return Step::Finish(failure(
                    Status::Failed,
                    ErrorStage::Transfer,
                    "file_unreadable",
                    e.to_string(),
                    None,
                    "check the file".into(),
                ));
            }
        };
        let plan = match ChunkPlan::for_size(size) {
            Ok(p) => p,
            Err(e) => {
                return Step::Finish(failure(
                    Status::Failed,
                    ErrorStage::Validate,
                    "file_too_large",
                    e.to_string(),
                    None,
                    "TikTok takes videos up to 4 GB".into(),
                ));
            }
        };
        let source = Source::Upload {
            video_size: plan.video_size,
            chunk_size: plan.chunk_size,
            total_chunk_count: plan.total_chunk_count,
        };
        let (publish_id, upload_url) = tri!(self.init(job, "upload", source).await);
        let Some(url) = upload_url else {
            return Step::Finish(failure(
                Status::Unknown,
                ErrorStage::Transfer,
                "no_upload_url",
                "TikTok accepted the upload but gave no upload URL".into(),
                None,
                "look at the profile; move the files back to retry".into(),
            ));
        };
        job.show_stage("uploading");
        if let Err(e) = self
            .tokens
            .client()
            .upload_file(&url, &path, &plan, content_type(&path))
            .await
        {
            let mut o = api_failure(ErrorStage::Transfer, &e);
            o.publish_id = Some(publish_id);
            return Step::Finish(o);
        }
        self.follow(job, &publish_id, false, creator).await
    }

    /// Revokes the item's URLs and records how much TikTok fetched.
    fn with_fetched(&self, job: &Job, mut o: PublishOutcome) -> PublishOutcome {
        if let Some(stats) = self.registry.revoke(&ItemId::new(job.record.id.clone())) {
            let total: u64 = job
                .media
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            o.fetched = Some(Fetched {
                bytes: stats.bytes_sent,
                of_bytes: total,
                first_at: stats
                    .first_access
                    .and_then(|t| jiff::Timestamp::try_from(t).ok()),
                complete_at: None,
            });
        }
        o
    }
}

impl Publisher for Arc<TikTokPublisher> {
    fn publish<'a>(
        &'a self,
        job: &'a mut Job,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Attempt> + Send + 'a>> {
        Box::pin(async move { self.run(job).await })
    }
}
