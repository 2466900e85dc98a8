//! The real publisher (SPEC §4 step 3–4), as the thin async driver of [`super::lifecycle`]: it
//! runs the actions the item's [`Life`] asks for — journal writes, creator_info, serving and
//! revoking the media, the init, chunk uploads, cancel, status polls, back-off sleeps — and
//! feeds the answers back as events. What any answer means is decided there; here are only the
//! calls, the requests they send, and the waits (each ends at once when the service stops).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::lifecycle::{Action, Durable, Event, Life, Media, Refusal, Settings, StatusAnswer};
use super::machine::{check_creator, check_draft, failure};
use super::{Attempt, Job, Later, PublishOutcome, Publisher};
use crate::config::Transfer;
use crate::content::media::MediaKind;
use crate::content::sidecar::Mode;
use crate::content::sidecar::rules::Kind;
use crate::lifecycle::outcome::{ErrorStage, Fetched, Status};
use crate::lifecycle::post::{self, Source};
use crate::lifecycle::status::Step;
use crate::serve::{ItemId, Registry, ServedFile};
use crate::support::backoff::Backoff;
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

/// What the driver keeps between actions of one job: the URLs of the current pull and the
/// chunk plan of the current upload (both made before the init intent is journaled), and the
/// code of the last init refusal (named when the back-off is logged).
#[derive(Default)]
struct Run {
    urls: Vec<String>,
    plan: Option<ChunkPlan>,
    refused: Option<String>,
    /// The init TikTok accepted (publish_id, transfer), logged once it is journaled.
    accepted: Option<(String, &'static str)>,
}

impl TikTokPublisher {
    /// One item: runs the actions of its [`Life`] until it finishes or is put off.
    async fn run(&self, job: &mut Job) -> Attempt {
        let durable = Durable {
            stage: job.record.stage.clone(),
            previous_attempts: job.record.previous_attempts.clone(),
            creator: job.record.creator.clone(),
        };
        let mut life = Life::new(self.settings(job), durable);
        let mut run = Run::default();
        let mut actions: VecDeque<Action> = life.handle(Timestamp::now(), Event::Start).into();
        while let Some(action) = actions.pop_front() {
            let event = match action {
                Action::Journal(d) => {
                    if let Err(e) = job.journal_life(&d) {
                        return Attempt::Later(format!("cannot write the journal: {e}").into());
                    }
                    if let Some((publish_id, transfer)) = run.accepted.take() {
                        tracing::info!(item = %job.record.item, %publish_id, transfer, "init accepted");
                    }
                    continue;
                }
                Action::Revoke => {
                    self.registry.revoke(&ItemId::new(job.record.id.clone()));
                    continue;
                }
                Action::Finish(o) => return Attempt::Done(Box::new(self.with_fetched(job, *o))),
                Action::Defer(later) => return Attempt::Later(later),
                Action::CheckCreator => self.check_creator(job).await,
                Action::Expose { resume } => match self.serve(job, resume).await {
                    Ok(urls) => {
                        run.urls = urls;
                        Event::Exposed {
                            url_tokens: job.url_tokens.clone(),
                        }
                    }
                    Err(o) => Event::NotExposed(o),
                },
                Action::WaitInitSlot => self.wait_init_slot(job, &life, &mut run).await,
                Action::Init { transfer } => self.init(job, transfer, &mut run).await,
                Action::Upload { upload_url, resume } => {
                    self.upload(job, &upload_url, resume).await
                }
                Action::Cancel { publish_id } => self.cancel_pull(job, &publish_id).await,
                Action::PollAfter(wait) => {
                    let publish_id = life.publish_id().unwrap_or_default().to_string();
                    self.poll_after(job, &publish_id, life.polls(), wait).await
                }
                Action::RetryAfter(wait) => self.back_off(job, run.refused.take(), wait).await,
            };
            actions.extend(life.handle(Timestamp::now(), event));
        }
        Attempt::Later("the publisher had nothing more to do".into())
    }

    fn settings(&self, job: &Job) -> Settings {
        let privacy = job.spec.privacy_level.map(|p| p.as_str());
        Settings {
            video: job.spec.kind == Kind::Video,
            direct: job.spec.mode == Mode::Direct,
            transfer: self.transfer,
            public: privacy == Some("PUBLIC_TO_EVERYONE"),
            self_only: privacy == Some("SELF_ONLY"),
            publish_timeout: self.publish_timeout,
            pull_start_timeout: self.pull_start_timeout,
            backoff: Backoff::PUBLISHER,
            restarted_since_init: job
                .current_attempt()
                .and_then(|(_, at)| at)
                .is_some_and(|at| at < process_start()),
        }
    }

    /// Sleeps `wait` unless the service stops first (`false`); the heartbeat is told.
    async fn sleep(&self, job: &Job, wait: Duration) -> bool {
        job.board
            .quiet_for(&job.record.account, wait + QUIET_MARGIN);
        tokio::select! {
            () = self.cancel.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    async fn back_off(&self, job: &Job, refused: Option<String>, wait: Duration) -> Event {
        match refused {
            Some(code) => {
                tracing::warn!(item = %job.record.item, "TikTok did not take the publish request for now ({code}); nothing was created, trying again in {} s", wait.as_secs());
                job.show_stage(Step::BackingOff {
                    secs: wait.as_secs(),
                });
            }
            None => {
                tracing::warn!(item = %job.record.item, "TikTok is not reachable for now; trying again in {} s", wait.as_secs());
            }
        }
        if self.sleep(job, wait).await {
            Event::BackedOff
        } else {
            Event::Stop
        }
    }

    /// Fresh creator_info before a new post (tiktok-api.md §9): the creator may post now, and
    /// the post fits the creator's settings. Drafts (inbox) need no creator_info (it needs
    /// `video.publish`): only the API's own limits are checked.
    async fn check_creator(&self, job: &mut Job) -> Event {
        if self.cancel.is_cancelled() {
            return Event::Stop;
        }
        let duration_ms = video_duration_ms(job).await;
        if job.spec.mode == Mode::Inbox {
            return Event::CreatorChecked(
                check_draft(&job.spec, duration_ms).map(|()| String::new()),
            );
        }
        job.show_stage(Step::CreatorInfo);
        let answer = self
            .tokens
            .with_token(&job.record.account, |t| async move {
                self.tokens.client().creator_info(&t).await
            })
            .await;
        match answer {
            Ok(info) => Event::CreatorChecked(
                check_creator(&mut job.spec, &info, duration_ms).map(|()| info.creator_username),
            ),
            Err(e) => Event::CreatorRefused(refusal(&e, api_error(&e, |a| a.clone()))),
        }
    }

    /// Waits for the init's rate window, before the journal says an init may be sent; makes
    /// the upload's chunk plan first (a file that changed is refused before anything is sent).
    async fn wait_init_slot(&self, job: &mut Job, life: &Life, run: &mut Run) -> Event {
        if life.transfer() == "upload" {
            match self.upload_plan(job) {
                Ok(plan) => run.plan = Some(plan),
                Err(o) => return Event::NotExposed(o),
            }
        }
        if self.cancel.is_cancelled() {
            return Event::Stop;
        }
        let kind = self.init_request(job, life.transfer(), run).1;
        if let Ok(token) = self.tokens.access_token(&job.record.account).await {
            job.show_stage(Step::RateLimit);
            tokio::select! {
                () = self.cancel.cancelled() => return Event::Stop,
                () = self.tokens.client().wait_for_init_slot(&token, kind) => {}
            }
        }
        // Never a new publish request once the service is stopping.
        if self.cancel.is_cancelled() {
            return Event::Stop;
        }
        Event::SlotReady
    }

    fn init_request(&self, job: &Job, transfer: &str, run: &Run) -> (post::InitRequest, InitKind) {
        let source = match (transfer, run.plan) {
            ("upload", Some(plan)) => Source::Upload {
                video_size: plan.video_size,
                chunk_size: plan.chunk_size,
                total_chunk_count: plan.total_chunk_count,
            },
            _ => Source::Pull(&run.urls),
        };
        let request = post::init_request(&job.spec, source);
        let kind = InitKind::from_path(request.endpoint).unwrap_or(InitKind::Video);
        (request, kind)
    }

    /// Sends the init, once (its intent is journaled).
    async fn init(&self, job: &mut Job, transfer: &'static str, run: &mut Run) -> Event {
        let (request, kind) = self.init_request(job, transfer, run);
        job.show_stage(Step::Init);
        let body = &request.body;
        let r = self
            .tokens
            .with_token(&job.record.account, |t| async move {
                self.tokens.client().init(&t, kind, body).await
            })
            .await;
        match r {
            Ok(resp) => {
                run.accepted = Some((resp.publish_id.clone(), transfer));
                Event::InitAccepted {
                    publish_id: resp.publish_id,
                    upload_url: resp.upload_url,
                }
            }
            Err(
                AuthorizedError::Call(InitError::MaybeSent(e))
                | AuthorizedError::RejectedAfterRefresh(InitError::MaybeSent(e)),
            ) => {
                tracing::warn!(item = %job.record.item, "the publish request was sent but TikTok's answer was lost ({e}); it is not sent again");
                Event::InitLost(e)
            }
            Err(err) => {
                run.refused = Some(error_code(&err));
                let refusal = refusal(&err, api_error(&err, |e| e.api_error().clone()));
                if let Refusal::Item(e) = &refusal
                    && e.code == "url_ownership_unverified"
                {
                    tracing::warn!(item = %job.record.item, "TikTok refuses to pull from public_url ({e}): verify the URL prefix in the TikTok developer portal");
                }
                Event::InitRefused(refusal)
            }
        }
    }

    /// FILE_UPLOAD: sequential chunk PUTs; `resume` after a restart, where TikTok's progress
    /// header (a 416) says. The service stopping ends it at once: the journal keeps the
    /// upload_url, and the next start goes on from TikTok's progress.
    async fn upload(&self, job: &Job, upload_url: &str, resume: bool) -> Event {
        let path = job.media[0].clone();
        let plan = match self.upload_plan(job) {
            Ok(plan) => plan,
            Err(o) => {
                let code = o.error.as_ref().map_or("file_changed", |e| e.code.as_str());
                return Event::UploadFailed(ApiError::transport(
                    crate::tiktok::error::Endpoint::Upload,
                    code,
                    o.error
                        .as_ref()
                        .map_or_else(String::new, |e| e.message.clone()),
                ));
            }
        };
        if resume {
            tracing::info!(item = %job.record.item, "making sure TikTok has the whole upload");
            job.show_stage(Step::Uploading { resumed: true });
        } else {
            job.show_stage(Step::Uploading { resumed: false });
        }
        job.board.quiet_for(&job.record.account, QUIET_MARGIN);
        let progress = upload_progress(job);
        let upload = self.tokens.client().upload_file_from(
            upload_url,
            &path,
            &plan,
            content_type(&path),
            0,
            &progress,
        );
        tokio::select! {
            () = self.cancel.cancelled() => Event::Stop,
            r = upload => match r {
                Ok(()) => Event::Uploaded,
                Err(_) if self.cancel.is_cancelled() => Event::Stop,
                Err(e) => Event::UploadFailed(e),
            },
        }
    }

    /// The chunk plan of the claimed file (refused when the file is not the one claimed).
    fn upload_plan(&self, job: &Job) -> Result<ChunkPlan, Box<PublishOutcome>> {
        let path = &job.media[0];
        let size = match std::fs::symlink_metadata(path) {
            Ok(m) if !stamp_matches(&job.record, path, &m) => {
                return Err(file_changed(&crate::support::diagnostic::display_path(
                    path,
                )));
            }
            Ok(m) => m.len(),
            Err(e) => {
                return Err(failure(
                    Status::Failed,
                    ErrorStage::Transfer,
                    "file_unreadable",
                    e.to_string(),
                    None,
                    "check the file".into(),
                ));
            }
        };
        ChunkPlan::for_size(size).map_err(|e| {
            failure(
                Status::Failed,
                ErrorStage::Validate,
                "file_too_large",
                e.to_string(),
                None,
                "TikTok takes videos up to 4 GB".into(),
            )
        })
    }

    /// Waits, then asks TikTok for the post's status. A status call that fails transiently (or
    /// answers without a status) is logged and asked again at the next poll.
    async fn poll_after(&self, job: &Job, publish_id: &str, polls: u32, wait: Duration) -> Event {
        if !self.sleep(job, wait).await {
            return Event::Stop;
        }
        let answer = self
            .tokens
            .with_token(&job.record.account, |t| async move {
                self.tokens.client().status_fetch(&t, publish_id).await
            })
            .await;
        let stats = self.registry.stats(&ItemId::new(job.record.id.clone()));
        let media = Media {
            requested: stats.as_ref().is_some_and(|s| s.requests > 0),
            served_whole: stats.as_ref().is_some_and(|s| s.full_downloads > 0),
        };
        let answer = match answer {
            Ok(status) => {
                job.board.update_flight(&job.record.account, |f| {
                    f.stage = Step::Processing { polls };
                    f.publish_id = Some(publish_id.to_string());
                    // Distinct bytes count a response once it ends; bytes sent show a
                    // download still running (capped: a repeat must not pass the size).
                    let total = f.bytes_total.unwrap_or(u64::MAX);
                    f.bytes_fetched = stats
                        .as_ref()
                        .map(|s| s.distinct_bytes.max(s.bytes_sent.min(total)))
                        .or(status.downloaded_bytes);
                });
                StatusAnswer::Read(status)
            }
            Err(e) => match refusal(&e, api_error(&e, |a| a.clone())) {
                Refusal::Transient { .. } => {
                    tracing::warn!(item = %job.record.item, %publish_id, "cannot read the post's status ({e}); asking again at the next poll");
                    StatusAnswer::Transient
                }
                Refusal::Paused(later) => StatusAnswer::Paused(later),
                Refusal::Item(api) => {
                    tracing::warn!(item = %job.record.item, %publish_id, "TikTok no longer answers for this publish_id ({api}); the post may exist");
                    StatusAnswer::Refused(api)
                }
            },
        };
        Event::Polled { answer, media }
    }

    /// A pull TikTok never started, when a fallback may follow: its links are revoked (a late
    /// download then fails) and the publish is cancelled. Only an acknowledged cancel makes
    /// the attempt dead; otherwise it is followed until TikTok says it FAILED.
    async fn cancel_pull(&self, job: &Job, publish_id: &str) -> Event {
        tracing::warn!(item = %job.record.item, %publish_id, "TikTok has not fetched the media {} after the init; revoking its links and cancelling the publish before any other attempt", crate::support::duration::format(self.pull_start_timeout));
        job.show_stage(Step::Cancelling);
        let answer = self
            .tokens
            .with_token(&job.record.account, |t| async move {
                self.tokens.client().cancel(&t, publish_id).await
            })
            .await;
        match answer {
            Ok(()) => {
                tracing::info!(item = %job.record.item, %publish_id, "TikTok cancelled the publish");
                Event::CancelAnswered { acknowledged: true }
            }
            Err(e) => {
                tracing::warn!(item = %job.record.item, %publish_id, "TikTok did not cancel the publish ({e}); following it until it ends");
                Event::CancelAnswered {
                    acknowledged: false,
                }
            }
        }
    }

    /// Serves the item's files and returns their URLs, in posting order. `resume`: under the
    /// tokens journaled with the publish_id, so the URLs TikTok has keep working.
    async fn serve(&self, job: &mut Job, resume: bool) -> Result<Vec<String>, Box<PublishOutcome>> {
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
                return Err(file_changed(&crate::support::diagnostic::printable(
                    &f.name,
                )));
            }
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(failure(
                    Status::Failed,
                    ErrorStage::Transfer,
                    "file_unreadable",
                    format!("cannot open the media file: {e}"),
                    None,
                    "check the file and move it back into the watched folder".into(),
                ));
            }
            Err(e) => {
                return Err(failure(
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
            self.registry
                .restore(item.clone(), served.clone(), job.url_tokens.clone())
                .inspect(|_| tracing::info!(item = %job.record.item, "serving the media again under the links TikTok was given"))
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
                Ok(published
                    .into_iter()
                    .map(|p| format!("{}{}", self.public_url, p.url_path))
                    .collect())
            }
            Err(e) => Err(failure(
                Status::Failed,
                ErrorStage::Transfer,
                "cannot_serve",
                e.to_string(),
                None,
                "rename the file to a plain name and move it back".into(),
            )),
        }
    }
}

/// A failed call by consequence, for the machine.
fn refusal<E: crate::tiktok::authorized::TokenRejection + std::fmt::Display>(
    e: &AuthorizedError<E>,
    api: ApiError,
) -> Refusal {
    match e.class() {
        ErrorClass::Transient { retry_after } => Refusal::Transient { retry_after },
        ErrorClass::AccountWide(p) => Refusal::Paused(Later::account(p, &error_code(e))),
        ErrorClass::Auth(_) => Refusal::Paused(Later::login(format!(
            "paused: TikTok refused the authorization ({}) — run `tokdrop auth login`",
            error_code(e)
        ))),
        ErrorClass::Item { .. } => Refusal::Item(api),
    }
}

/// TikTok's error behind a failed call (a refused login as an error of its own).
fn api_error<E>(e: &AuthorizedError<E>, inner: impl Fn(&E) -> ApiError) -> ApiError {
    match e {
        AuthorizedError::Call(c) | AuthorizedError::RejectedAfterRefresh(c) => inner(c),
        AuthorizedError::Auth(a) => ApiError::transport(
            crate::tiktok::error::Endpoint::CreatorInfo,
            "authorization",
            a.to_string(),
        ),
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

/// The video's duration: as intake read it, or (a job built without it) probed off the
/// async threads.
async fn video_duration_ms(job: &Job) -> Option<u64> {
    if job.spec.kind != Kind::Video {
        return None;
    }
    if job.duration_ms.is_some() {
        return job.duration_ms;
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

/// When this process started publishing: the first call comes from the first job's settings,
/// before any init of this process, so an older init was sent by an earlier process.
fn process_start() -> jiff::Timestamp {
    static START: std::sync::OnceLock<jiff::Timestamp> = std::sync::OnceLock::new();
    *START.get_or_init(jiff::Timestamp::now)
}
