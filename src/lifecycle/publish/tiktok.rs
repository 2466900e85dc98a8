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
    AfterFailure, Follow, FollowStep, after_failure, api_failure, check_creator, check_draft,
    failure,
};
use super::{Attempt, Job, Later, PublishOutcome, Publisher};
use crate::config::Transfer;
use crate::content::media::MediaKind;
use crate::content::sidecar::Mode;
use crate::content::sidecar::rules::Kind;
use crate::lifecycle::outcome::{ErrorStage, Fetched, PreviousAttempt, Status};
use crate::lifecycle::post::{self, Source};
use crate::serve::{ItemId, Registry, ServedFile};
use crate::tiktok::api::InitKind;
use crate::tiktok::authorized::AuthorizedError;
use crate::tiktok::chunks::ChunkPlan;
use crate::tiktok::error::{ApiError, ErrorClass, InitError};
use crate::tiktok::tokens::TokenManager;

/// A worker announcing a wait stays "alive" this much past it: the call after the wait (the
/// client's own time limits apply) shows progress again before a stall is reported.
const QUIET_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Publishes through the TikTok Content Posting API.
pub struct TikTokPublisher {
    pub tokens: Arc<TokenManager>,
    pub registry: Registry,
    pub public_url: url::Url,
    pub transfer: Transfer,
    pub publish_timeout: Duration,
    /// `auto` videos: cancel a pull TikTok has not started after this, then upload.
    pub pull_start_timeout: Duration,
    /// Stops polling at a safe point (the item resumes by publish_id after restart).
    pub cancel: CancellationToken,
}

/// How one attempt ended, before it becomes an outcome.
enum Step<T> {
    Ok(T),
    /// Stop here: the outcome is known (failure or unknown).
    Finish(Box<PublishOutcome>),
    /// Not now: account paused or service stopping.
    Later(Later),
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
            Step::Later(r) => return Attempt::Later(r),
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
            if self.cancel.is_cancelled() {
                return Step::Later("the service is stopping".into());
            }
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
                    job.board
                        .quiet_for(&job.record.account, wait + QUIET_MARGIN);
                    tokio::select! {
                        () = self.cancel.cancelled() => return Step::Later("the service is stopping".into()),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                (Err(e), Some(ErrorClass::AccountWide(p))) => {
                    return Step::Later(Later::account(p, &error_code(&e)));
                }
                (Err(e), Some(ErrorClass::Auth(_))) => {
                    return Step::Later(Later::login(format!(
                        "paused: TikTok refused the authorization ({}) — run `tokdrop auth login`",
                        error_code(&e)
                    )));
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
                    url_name(
                        &p.file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    ),
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
            Ok(Ok(ref s)) if let Some(f) = s.iter().find(|f| !as_claimed(&job.record, f)) => {
                return Step::Finish(file_changed(&crate::support::diagnostic::printable(
                    &f.name,
                )));
            }
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
            // Never a new publish request once the service is stopping (SIGTERM may arrive
            // while an earlier call hung or during the back-off).
            if self.cancel.is_cancelled() {
                return Step::Later("the service is stopping".into());
            }
            // The rate window is waited out before the journal says an init may be sent.
            if let Ok(token) = self.tokens.access_token(&job.record.account).await {
                job.show_stage("waiting for TikTok's rate limit");
                tokio::select! {
                    () = self.cancel.cancelled() => return Step::Later("the service is stopping".into()),
                    () = self.tokens.client().wait_for_init_slot(&token, kind) => {}
                }
            }
            if let Err(e) = job.init_intent(transfer) {
                return Step::Later(format!("cannot write the journal: {e}").into());
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
                    if let Err(e) =
                        job.published(&resp.publish_id, transfer, resp.upload_url.as_deref())
                    {
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
                        return Step::Later(format!("cannot write the journal: {e}").into());
                    }
                    match err.class() {
                        ErrorClass::Transient { retry_after } => {
                            let wait = retry_after.unwrap_or(delay);
                            delay = (delay * 2).min(Duration::from_secs(300));
                            tracing::warn!(item = %job.record.item, "TikTok did not take the publish request for now ({}); nothing was created, trying again in {} s", error_code(&err), wait.as_secs());
                            job.show_stage(format!(
                                "waiting to send the publish request again ({} s)",
                                wait.as_secs()
                            ));
                            job.board
                                .quiet_for(&job.record.account, wait + QUIET_MARGIN);
                            tokio::select! {
                                () = self.cancel.cancelled() => return Step::Later("the service is stopping".into()),
                                () = tokio::time::sleep(wait) => {}
                            }
                        }
                        ErrorClass::AccountWide(p) => {
                            return Step::Later(Later::account(p, &error_code(&err)));
                        }
                        ErrorClass::Auth(_) => {
                            return Step::Later(Later::login(
                                "paused: TikTok refused the authorization — run `tokdrop auth login`",
                            ));
                        }
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
                            if self.account_not_private(job, &api.code) {
                                return Step::Later(Later::paused(
                                    "paused: this TikTok app is not audited, so it may post only to a private account; make the account private in the TikTok app (or have the app audited)",
                                    &api.code,
                                ));
                            }
                            return Step::Finish(api_failure(ErrorStage::Init, &api));
                        }
                    }
                }
            }
        }
    }

    /// Polls until a terminal status, the timeout (counted from the init, across restarts),
    /// or the service stopping ([`Follow`] decides). A status call that fails transiently is
    /// asked again at the next poll, so the timeout still ends it; one TikTok refuses for this
    /// publish_id (`invalid_publish_id`, …) ends the item `unknown` with the id kept, as the
    /// post may exist.
    async fn follow(
        &self,
        job: &Job,
        publish_id: &str,
        pulling: bool,
        init_at: Option<jiff::Timestamp>,
    ) -> Step<PublishOutcome> {
        let started = tokio::time::Instant::now();
        let before = init_at
            .and_then(|t| Duration::try_from(jiff::Timestamp::now().duration_since(t)).ok())
            .unwrap_or_default();
        let elapsed = || before + started.elapsed();
        let public = job
            .spec
            .privacy_level
            .is_some_and(|p| p.as_str() == "PUBLIC_TO_EVERYONE");
        let creator = job.record.creator.as_deref();
        let mut follow = Follow::new(publish_id, creator, public, pulling, self.publish_timeout);
        if job.spec.kind != Kind::Video {
            follow = follow.photos();
        }
        if self.falls_back(job) {
            follow = follow.cancel_on_silence(self.pull_start_timeout);
        }
        let item = ItemId::new(job.record.id.clone());
        loop {
            let requested = self.registry.stats(&item).is_some_and(|s| s.requests > 0);
            let wait = match follow.next(elapsed(), requested) {
                FollowStep::Poll(wait) => wait,
                FollowStep::Cancel => {
                    self.cancel_silent_pull(job, publish_id).await;
                    continue;
                }
                FollowStep::Done(o) => return Step::Ok(*o),
                FollowStep::Finish(o) => return Step::Finish(o),
            };
            job.board
                .quiet_for(&job.record.account, wait + QUIET_MARGIN);
            tokio::select! {
                () = self.cancel.cancelled() => return Step::Later("the service is stopping; the post is followed again at the next start".into()),
                () = tokio::time::sleep(wait) => {}
            }
            let answer = self
                .tokens
                .with_token(&job.record.account, |t| async move {
                    self.tokens.client().status_fetch(&t, publish_id).await
                })
                .await;
            let status = match answer {
                Ok(status) => status,
                Err(e) => match e.class() {
                    ErrorClass::Transient { .. } => {
                        tracing::warn!(item = %job.record.item, %publish_id, "cannot read the post's status ({e}); asking again at the next poll");
                        continue;
                    }
                    ErrorClass::AccountWide(p) => {
                        return Step::Later(Later::account(p, &error_code(&e)));
                    }
                    ErrorClass::Auth(_) => {
                        return Step::Later(Later::login(format!(
                            "paused: TikTok refused the authorization ({}) — run `tokdrop auth login`",
                            error_code(&e)
                        )));
                    }
                    ErrorClass::Item { .. } => {
                        return Step::Finish(status_refused(publish_id, &e));
                    }
                },
            };
            let fetched = self.registry.stats(&item);
            job.board.update_flight(&job.record.account, |f| {
                f.stage = format!("processing (polled {}×)", follow.polls());
                f.publish_id = Some(publish_id.to_string());
                f.bytes_fetched = fetched
                    .as_ref()
                    .map(|s| s.distinct_bytes)
                    .or(status.downloaded_bytes);
            });
            match follow.on_status(&status) {
                Some(FollowStep::Done(o)) => return Step::Ok(*o),
                Some(FollowStep::Finish(o)) => return Step::Finish(o),
                Some(FollowStep::Poll(_) | FollowStep::Cancel) | None => {}
            }
        }
    }

    /// A pull TikTok never started, when a fallback may follow: the links are revoked (a late
    /// download then fails) and the publish is cancelled, so that TikTok's status turns FAILED
    /// before anything else is sent. Best effort: following goes on either way.
    async fn cancel_silent_pull(&self, job: &Job, publish_id: &str) {
        self.registry.revoke(&ItemId::new(job.record.id.clone()));
        tracing::warn!(item = %job.record.item, %publish_id, "TikTok has not fetched the media {} after the init; revoking its links and cancelling the publish before any other attempt", crate::support::duration::format(self.pull_start_timeout));
        job.show_stage("cancelling a pull TikTok never started");
        let answer = self
            .tokens
            .with_token(&job.record.account, |t| async move {
                self.tokens.client().cancel(&t, publish_id).await
            })
            .await;
        match answer {
            Ok(()) => {
                tracing::info!(item = %job.record.item, %publish_id, "TikTok cancelled the publish")
            }
            Err(e) => {
                tracing::warn!(item = %job.record.item, %publish_id, "TikTok did not cancel the publish ({e}); following it until it ends")
            }
        }
    }

    /// An unaudited app's refusal of a SELF_ONLY post: the account is public, which no item
    /// can fix (another privacy level can: that refusal fails the item).
    fn account_not_private(&self, job: &Job, code: &str) -> bool {
        code == "unaudited_client_can_only_post_to_private_accounts"
            && job
                .spec
                .privacy_level
                .is_some_and(|p| p.as_str() == "SELF_ONLY")
    }

    /// Whether a failed pull of this job may fall back to FILE_UPLOAD (`transfer: auto` videos).
    fn falls_back(&self, job: &Job) -> bool {
        job.spec.kind == Kind::Video && self.transfer == Transfer::Auto
    }
}

/// The outcome when TikTok refuses to tell a publish_id's status: the post may exist.
fn status_refused(publish_id: &str, e: &AuthorizedError<ApiError>) -> Box<PublishOutcome> {
    let (code, log_id) = match e {
        AuthorizedError::Call(c) | AuthorizedError::RejectedAfterRefresh(c) => {
            (c.code.clone(), c.log_id.clone())
        }
        AuthorizedError::Auth(_) => ("status_refused".to_string(), None),
    };
    let mut o = failure(
        Status::Unknown,
        ErrorStage::Processing,
        &code,
        format!("TikTok no longer answers for this publish_id: {e}"),
        log_id,
        "the post may exist: look at the creator's TikTok profile (or inbox); move the files back into the watched folder only if it is not there".into(),
    );
    o.publish_id = Some(publish_id.to_string());
    o
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
    /// One item: follow the attempt TikTok already accepted (after a restart; no creator_info,
    /// whose cap answers must not hold up a post that exists), or check the creator and send
    /// the first init; then, while an attempt ends FAILED in a way a new init may fix
    /// ([`after_failure`]), send another. Every publish_id is kept in `previous_attempts`.
    async fn run(&self, job: &mut Job) -> Attempt {
        let mut next = if self.transfer == Transfer::Upload && job.spec.kind == Kind::Video {
            "upload"
        } else {
            "pull"
        };
        if let Some(publish_id) = job.publish_id().map(String::from) {
            let (transfer, init_at) = job
                .current_attempt()
                .map(|(t, at)| (if t == "upload" { "upload" } else { "pull" }, at))
                .unwrap_or(("pull", None));
            if transfer == "pull" {
                let _ = step!(self.expose(job, true).await);
            }
            let end = match self.resume_upload(job, &publish_id).await {
                Some(failed) => Step::Finish(failed),
                None => {
                    self.follow(job, &publish_id, transfer == "pull", init_at)
                        .await
                }
            };
            next = match self.after(job, end, transfer) {
                Ok(t) => t,
                Err(attempt) => return attempt,
            };
        }
        let mut checked = false;
        loop {
            if !checked {
                if let Err(attempt) = self.check_creator(job, next).await {
                    return attempt;
                }
                checked = true;
            }
            let end = if next == "pull" {
                self.pull_attempt(job).await
            } else {
                self.upload_attempt(job).await
            };
            next = match self.after(job, end, next) {
                Ok(t) => t,
                Err(attempt) => return attempt,
            };
        }
    }

    /// Fresh creator_info before a new post (tiktok-api.md §9): the creator may post now, and
    /// the post fits the creator's settings. Remembers the username for links.
    /// `planned`: the transfer the next init would use (named in a refusal's result).
    async fn check_creator(&self, job: &mut Job, planned: &'static str) -> Result<(), Attempt> {
        if job.spec.mode == Mode::Inbox {
            let duration_ms = video_duration_ms(job).await;
            return check_draft(&job.spec, duration_ms)
                .map_err(|o| Attempt::Done(Box::new(self.finished(job, *o, Some(planned)))));
        }
        job.show_stage("creator_info");
        let info = match self
            .call(job, ErrorStage::Authorize, |t| async move {
                self.tokens.client().creator_info(&t).await
            })
            .await
        {
            Step::Ok(info) => info,
            Step::Finish(o) => {
                return Err(Attempt::Done(Box::new(self.finished(
                    job,
                    *o,
                    Some(planned),
                ))));
            }
            Step::Later(later) => return Err(Attempt::Later(later)),
        };
        job.record.creator = Some(info.creator_username.clone());
        let duration_ms = video_duration_ms(job).await;
        check_creator(&mut job.spec, &info, duration_ms)
            .map_err(|o| Attempt::Done(Box::new(self.finished(job, *o, Some(planned)))))
    }

    /// After an attempt: `Ok(transfer)` to send another init, or the item's answer.
    fn after(
        &self,
        job: &mut Job,
        end: Step<PublishOutcome>,
        used: &'static str,
    ) -> Result<&'static str, Attempt> {
        let o = match end {
            Step::Later(later) => return Err(Attempt::Later(later)),
            Step::Ok(o) => return Err(Attempt::Done(Box::new(self.finished(job, o, Some(used))))),
            Step::Finish(o) => o,
        };
        let reason = o.error.as_ref().map_or("", |e| e.code.as_str());
        if o.status == Status::Failed {
            let item = ItemId::new(job.record.id.clone());
            let served_ok = self
                .registry
                .stats(&item)
                .is_some_and(|s| s.full_downloads > 0);
            let video = job.spec.kind == Kind::Video;
            let decision = after_failure(
                reason,
                video,
                self.falls_back(job),
                used,
                &job.record.previous_attempts,
                served_ok,
            );
            if let AfterFailure::Retry(transfer) = decision {
                tracing::warn!(item = %job.record.item, publish_id = ?o.publish_id, "the {used} attempt ended without a post ({reason}); TikTok's answer is final, so trying again by {transfer}");
                job.add_previous(PreviousAttempt {
                    publish_id: o.publish_id.clone(),
                    transfer: used.to_string(),
                    fail_reason: reason.to_string(),
                });
                self.registry.revoke(&item);
                return Ok(transfer);
            }
        }
        Err(Attempt::Done(Box::new(self.finished(job, *o, Some(used)))))
    }

    /// The item's outcome: its transfer, every earlier attempt, what TikTok fetched.
    fn finished(&self, job: &Job, mut o: PublishOutcome, used: Option<&str>) -> PublishOutcome {
        o.transfer = used.map(String::from);
        o.previous_attempts = job.record.previous_attempts.clone();
        self.with_fetched(job, o)
    }

    async fn pull_attempt(&self, job: &mut Job) -> Step<PublishOutcome> {
        let urls = tri!(self.expose(job, false).await);
        let (publish_id, _) = match self.init(job, "pull", Source::Pull(&urls)).await {
            Step::Ok(v) => v,
            Step::Finish(o) => return Step::Finish(o),
            Step::Later(r) => {
                self.registry.revoke(&ItemId::new(job.record.id.clone()));
                return Step::Later(r);
            }
        };
        let init_at = job.current_attempt().and_then(|(_, at)| at);
        self.follow(job, &publish_id, true, init_at).await
    }

    /// After a restart, an upload that may have been cut short goes on where TikTok says it
    /// stopped (a first PUT answered 416 names the progress; a complete upload is skipped).
    /// `Some` is the attempt's failure.
    async fn resume_upload(&self, job: &Job, publish_id: &str) -> Option<Box<PublishOutcome>> {
        let url = job.upload_url()?.to_string();
        let path = job.media[0].clone();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let plan = ChunkPlan::for_size(size).ok()?;
        job.show_stage("uploading (resumed)");
        tracing::info!(item = %job.record.item, %publish_id, "making sure TikTok has the whole upload");
        match self
            .tokens
            .client()
            .upload_file_from(
                &url,
                &path,
                &plan,
                content_type(&path),
                0,
                &upload_progress(job),
            )
            .await
        {
            Ok(()) => None,
            Err(e) => {
                let mut o = api_failure(ErrorStage::Transfer, &e);
                o.publish_id = Some(publish_id.to_string());
                Some(o)
            }
        }
    }

    async fn upload_attempt(&self, job: &mut Job) -> Step<PublishOutcome> {
        let path = job.media[0].clone();
        let size = match std::fs::symlink_metadata(&path) {
            Ok(m) if !stamp_matches(&job.record, &path, &m) => {
                return Step::Finish(file_changed(&crate::support::diagnostic::display_path(
                    &path,
                )));
            }
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
            .upload_file_from(
                &url,
                &path,
                &plan,
                content_type(&path),
                0,
                &upload_progress(job),
            )
            .await
        {
            let mut o = api_failure(ErrorStage::Transfer, &e);
            o.publish_id = Some(publish_id);
            return Step::Finish(o);
        }
        let init_at = job.current_attempt().and_then(|(_, at)| at);
        self.follow(job, &publish_id, false, init_at).await
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
                bytes: stats.distinct_bytes,
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

/// The video's duration, probed off the async threads.
async fn video_duration_ms(job: &Job) -> Option<u64> {
    if job.spec.kind != Kind::Video {
        return None;
    }
    let path = job.media[0].clone();
    tokio::task::spawn_blocking(move || crate::content::media::probe(&path))
        .await
        .ok()?
        .ok()
        .and_then(|i| i.duration_ms)
}

/// Whether `served` is the file the claim stamped (journals from before stamps: yes).
fn as_claimed(record: &crate::lifecycle::journal::Record, served: &ServedFile) -> bool {
    if record.stamps.is_empty() {
        return true;
    }
    let Some(stamp) = record.stamps.get(&served.path) else {
        return false;
    };
    let id = &served.identity;
    let mtime_ns = id
        .mtime
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    (
        stamp.dev,
        stamp.ino,
        stamp.size,
        stamp.mtime_ns,
        stamp.ctime_ns,
    ) == (id.dev, id.ino, id.size, mtime_ns, id.ctime_ns)
}

/// Whether the file at `path` (its `symlink_metadata`) is the one the claim stamped.
fn stamp_matches(
    record: &crate::lifecycle::journal::Record,
    path: &std::path::Path,
    meta: &std::fs::Metadata,
) -> bool {
    record.stamps.is_empty()
        || meta.is_file()
            && record.stamps.get(path) == Some(&crate::lifecycle::journal::FileStamp::of(meta))
}

/// The name a media file is served under: its own, with control characters (a newline in a
/// dropped name) and backslashes replaced by `_`, which the media server would refuse.
fn url_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() || c == '\\' { '_' } else { c })
        .collect()
}

/// The answer for a media file that is not the one the claim stamped: nothing is sent.
fn file_changed(name: &str) -> Box<PublishOutcome> {
    failure(
        Status::Failed,
        ErrorStage::Transfer,
        "file_changed",
        format!(
            "{name} is not the file tokdrop took: it was replaced or changed after it was claimed, so nothing was sent"
        ),
        None,
        "drop the file again if the change was intended".into(),
    )
}

/// Shows the bytes TikTok acknowledged on the status board (`status --watch`'s progress bar).
fn upload_progress(job: &Job) -> impl Fn(u64) + Send + Sync + use<> {
    let (board, account) = (job.board.clone(), job.record.account.clone());
    move |bytes| {
        board.update_flight(&account, |f| f.bytes_fetched = Some(bytes));
    }
}
