//! One item's whole life after its claim, as one pure state machine (issue 13): creator check,
//! init intent, init, transfer (pull, upload, the pull → upload fallback), polling, the end, and
//! the pauses, retries and restarts in between. [`Life::handle`] takes an [`Event`] and the
//! time, and returns the [`Action`]s to run, in order; it does no I/O. Its durable state is
//! exactly what the journal stores for the item ([`Durable`]: the journal's [`Stage`], the
//! earlier attempts and the creator's name); what it keeps besides (poll count, back-off step,
//! what the media server saw) is safe to lose in a crash.
//!
//! The rules it enforces: an init that may have reached TikTok is never sent again (its
//! intent is journaled first; a lost answer ends `unknown`); an init TikTok answered without
//! creating anything is journaled as such *before* the back-off; a second init follows only a
//! first attempt known dead (status FAILED, or links revoked and `cancel` acknowledged) and
//! only when [`after_failure`] allows it; every publish_id is kept in `previous_attempts` and
//! journaled; a resumed post is followed without creator_info; a publish_id TikTok stops
//! answering for ends `unknown` with its id. The async driver is [`super::tiktok`].

use std::time::Duration;

use jiff::Timestamp;

use super::machine::{AfterFailure, Follow, FollowStep, after_failure, api_failure, failure};
use super::{Later, PublishOutcome};
use crate::config::Transfer;
use crate::lifecycle::journal::Stage;
use crate::lifecycle::outcome::{ErrorStage, PreviousAttempt, Status};
use crate::tiktok::error::ApiError;

pub use super::events::{Action, Durable, Event, Media, Refusal, Settings, StatusAnswer};

/// What a back-off repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    CreatorInfo,
    Init,
}

/// One item's life.
#[derive(Debug)]
pub struct Life {
    settings: Settings,
    durable: Durable,
    /// The transfer of the current (or next) attempt.
    transfer: &'static str,
    url_tokens: Vec<String>,
    follow: Option<Follow>,
    /// When following began, for journals without `init_at`.
    follow_origin: Option<Timestamp>,
    media: Media,
    failures: u32,
    retrying: Option<Retry>,
    resuming: bool,
    finished: bool,
}

const STOPPING: &str = "the service is stopping";
const UNAUDITED: &str = "unaudited_client_can_only_post_to_private_accounts";

fn transfer_name(t: &str) -> &'static str {
    if t == "upload" { "upload" } else { "pull" }
}

impl Life {
    pub fn new(settings: Settings, durable: Durable) -> Self {
        Self {
            settings,
            durable,
            transfer: "pull",
            url_tokens: Vec::new(),
            follow: None,
            follow_origin: None,
            media: Media::default(),
            failures: 0,
            retrying: None,
            resuming: false,
            finished: false,
        }
    }

    /// What the journal holds (after the last [`Action::Journal`]).
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// The item has its outcome.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The publish_id being followed.
    pub fn publish_id(&self) -> Option<&str> {
        match &self.durable.stage {
            Stage::Published { publish_id, .. } => Some(publish_id),
            _ => None,
        }
    }

    /// The transfer of the current attempt.
    pub fn transfer(&self) -> &'static str {
        self.transfer
    }

    /// Status requests made while following the current publish_id.
    pub fn polls(&self) -> u32 {
        self.follow.as_ref().map_or(0, Follow::polls)
    }

    /// The next actions after `event`, at `now`.
    pub fn handle(&mut self, now: Timestamp, event: Event) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        match event {
            Event::Start => self.start(now),
            Event::Stop => self.stop(),
            Event::CreatorChecked(Ok(username)) => {
                if !username.is_empty() {
                    self.durable.creator = Some(username);
                }
                self.begin_attempt()
            }
            Event::CreatorChecked(Err(o)) | Event::NotExposed(o) => self.finish(*o),
            Event::CreatorRefused(r) => match r {
                Refusal::Transient { retry_after } => {
                    self.back_off(Retry::CreatorInfo, retry_after)
                }
                Refusal::Paused(later) => vec![Action::Defer(later)],
                Refusal::Item(e) => self.finish(*api_failure(ErrorStage::Authorize, &e)),
            },
            Event::Exposed { url_tokens } => {
                self.url_tokens = url_tokens;
                if self.resuming {
                    self.begin_follow(now)
                } else {
                    vec![Action::WaitInitSlot]
                }
            }
            Event::SlotReady => {
                self.durable.stage = Stage::InitIntent {
                    at: now,
                    transfer: self.transfer.to_string(),
                };
                vec![
                    self.journal(),
                    Action::Init {
                        transfer: self.transfer,
                    },
                ]
            }
            Event::InitAccepted {
                publish_id,
                upload_url,
            } => self.init_accepted(now, publish_id, upload_url),
            Event::InitRefused(r) => self.init_refused(r),
            Event::InitLost(e) => {
                let mut acts = self.revoke_if_pulling();
                acts.extend(self.finish(*failure(
                    Status::Unknown,
                    ErrorStage::Init,
                    &e.code,
                    format!("the publish request was sent but TikTok's answer was lost ({})", e.message),
                    e.log_id.clone(),
                    "look at the creator's TikTok profile (or inbox); if the post is not there, move the files back into the watched folder to try again".into(),
                )));
                acts
            }
            Event::Uploaded => self.begin_follow(now),
            Event::UploadFailed(e) => {
                let mut o = api_failure(ErrorStage::Transfer, &e);
                o.publish_id = self.publish_id().map(String::from);
                self.attempt_ended(*o)
            }
            Event::CancelAnswered { acknowledged: true } => {
                // Links revoked and the cancel acknowledged: this attempt cannot post any more.
                let mut o = failure(
                    Status::Failed,
                    ErrorStage::Transfer,
                    "publish_cancelled",
                    "TikTok never fetched the media; the publish was cancelled".into(),
                    None,
                    "check that public_url is reachable from the internet".into(),
                );
                o.publish_id = self.publish_id().map(String::from);
                self.attempt_ended(*o)
            }
            Event::CancelAnswered {
                acknowledged: false,
            } => self.next_poll(now),
            Event::Polled { answer, media } => self.polled(now, answer, media),
            Event::BackedOff => match self.retrying.take() {
                Some(Retry::CreatorInfo) => vec![Action::CheckCreator],
                Some(Retry::Init) => vec![Action::WaitInitSlot],
                None => Vec::new(),
            },
        }
    }

    fn journal(&self) -> Action {
        Action::Journal(self.durable.clone())
    }

    /// Start or resume from what the journal says.
    fn start(&mut self, now: Timestamp) -> Vec<Action> {
        match self.durable.stage.clone() {
            Stage::Published {
                publish_id,
                transfer,
                url_tokens,
                upload_url,
                revoked,
                ..
            } => {
                // A post TikTok has: follow it, never ask creator_info (a daily cap must not
                // hold it back) and never send another init for it.
                self.resuming = true;
                self.transfer = transfer_name(&transfer);
                self.url_tokens = url_tokens;
                match (self.transfer, upload_url) {
                    ("pull", _) if !revoked => vec![Action::Expose { resume: true }],
                    // Links revoked before the restart: the cancel may not have reached TikTok.
                    // Asking again is harmless; an acknowledged cancel makes the fallback safe.
                    ("pull", _) => vec![Action::Cancel { publish_id }],
                    ("upload", Some(upload_url)) => vec![Action::Upload {
                        upload_url,
                        resume: true,
                    }],
                    _ => self.begin_follow(now),
                }
            }
            Stage::InitIntent { transfer, .. } => {
                self.transfer = transfer_name(&transfer);
                self.finish(*failure(
                    Status::Unknown,
                    ErrorStage::Restart,
                    "interrupted_after_init",
                    "tokdrop stopped after sending the publish request, before TikTok's answer was recorded".into(),
                    None,
                    "look at the creator's TikTok profile (or inbox); if the post is not there, move the files back into the watched folder to try again".into(),
                ))
            }
            Stage::Claiming | Stage::Claimed => {
                self.transfer = self.planned();
                vec![Action::CheckCreator]
            }
            // Finished items are the pipeline's.
            Stage::Terminal { .. } | Stage::Finishing { .. } => Vec::new(),
        }
    }

    /// The transfer of a new attempt: the folder's, or what the last ended attempt allows.
    fn planned(&self) -> &'static str {
        let s = &self.settings;
        let first = if s.video && s.transfer == Transfer::Upload {
            "upload"
        } else {
            "pull"
        };
        let prev = &self.durable.previous_attempts;
        let Some((last, earlier)) = prev.split_last() else {
            return first;
        };
        match after_failure(
            &last.fail_reason,
            s.video,
            self.auto(),
            &last.transfer,
            earlier,
            true,
        ) {
            AfterFailure::Retry(t) => t,
            AfterFailure::Finish => transfer_name(&last.transfer),
        }
    }

    fn auto(&self) -> bool {
        self.settings.video && self.settings.transfer == Transfer::Auto
    }

    /// A new attempt: serve the media (pull) or wait for the init slot (upload).
    fn begin_attempt(&mut self) -> Vec<Action> {
        self.resuming = false;
        if self.transfer == "pull" {
            vec![Action::Expose { resume: false }]
        } else {
            vec![Action::WaitInitSlot]
        }
    }

    fn back_off(&mut self, what: Retry, retry_after: Option<Duration>) -> Vec<Action> {
        self.failures += 1;
        self.retrying = Some(what);
        vec![Action::RetryAfter(
            self.settings.backoff.delay(self.failures, retry_after),
        )]
    }

    fn revoke_if_pulling(&self) -> Vec<Action> {
        if self.transfer == "pull" {
            vec![Action::Revoke]
        } else {
            Vec::new()
        }
    }

    fn stop(&mut self) -> Vec<Action> {
        let mut acts = match self.durable.stage {
            // Not yet on TikTok: nothing may fetch the links until the next try.
            Stage::Claiming | Stage::Claimed => self.revoke_if_pulling(),
            _ => Vec::new(),
        };
        acts.push(Action::Defer(Later::from(STOPPING)));
        acts
    }

    fn init_accepted(
        &mut self,
        now: Timestamp,
        publish_id: String,
        upload_url: Option<String>,
    ) -> Vec<Action> {
        self.failures = 0;
        let pull = self.transfer == "pull";
        self.durable.stage = Stage::Published {
            publish_id: publish_id.clone(),
            transfer: self.transfer.to_string(),
            url_tokens: if pull {
                self.url_tokens.clone()
            } else {
                Vec::new()
            },
            init_at: Some(now),
            upload_url: upload_url.clone(),
            revoked: false,
        };
        let mut acts = vec![self.journal()];
        if pull {
            acts.extend(self.begin_follow(now));
            return acts;
        }
        match upload_url {
            Some(upload_url) => acts.push(Action::Upload {
                upload_url,
                resume: false,
            }),
            None => {
                let mut o = failure(
                    Status::Unknown,
                    ErrorStage::Transfer,
                    "no_upload_url",
                    "TikTok accepted the upload but gave no upload URL".into(),
                    None,
                    "look at the profile; move the files back to retry".into(),
                );
                o.publish_id = Some(publish_id);
                acts.extend(self.finish(*o));
            }
        }
        acts
    }

    /// The init was answered with an error: nothing exists at TikTok. The journal says so
    /// first, so a crash during what follows (a back-off) does not end `unknown`.
    fn init_refused(&mut self, r: Refusal) -> Vec<Action> {
        self.durable.stage = Stage::Claimed;
        let mut acts = vec![self.journal()];
        match r {
            Refusal::Transient { retry_after } => {
                acts.extend(self.back_off(Retry::Init, retry_after));
            }
            Refusal::Paused(later) => {
                acts.extend(self.revoke_if_pulling());
                acts.push(Action::Defer(later));
            }
            Refusal::Item(e) if e.code == UNAUDITED && self.settings.self_only => {
                acts.extend(self.revoke_if_pulling());
                acts.push(Action::Defer(Later::paused(
                    "paused: this TikTok app is not audited, so it may post only to a private account; make the account private in the TikTok app (or have the app audited)",
                    UNAUDITED,
                )));
            }
            Refusal::Item(e) => acts.extend(self.attempt_ended(*api_failure(ErrorStage::Init, &e))),
        }
        acts
    }

    fn begin_follow(&mut self, now: Timestamp) -> Vec<Action> {
        let (publish_id, revoked) = match &self.durable.stage {
            Stage::Published {
                publish_id,
                revoked,
                ..
            } => (publish_id.clone(), *revoked),
            _ => {
                return self.finish(*failure(
                    Status::Unknown,
                    ErrorStage::Processing,
                    "internal",
                    "no publish_id to follow".into(),
                    None,
                    "look at the creator's profile".into(),
                ));
            }
        };
        let s = &self.settings;
        let pulling = self.transfer == "pull";
        let mut follow = Follow::new(
            &publish_id,
            self.durable.creator.as_deref(),
            s.public,
            pulling,
            s.publish_timeout,
        );
        if !s.video {
            follow = follow.photos();
        }
        if pulling && self.auto() {
            follow = follow.cancel_on_silence(s.pull_start_timeout);
            if revoked {
                follow = follow.cancel_sent();
            }
        }
        self.follow = Some(follow);
        self.follow_origin = Some(now);
        self.next_poll(now)
    }

    /// Time since the init (journaled, so it counts across restarts).
    fn elapsed(&self, now: Timestamp) -> Duration {
        let init_at = match &self.durable.stage {
            Stage::Published { init_at, .. } => *init_at,
            _ => None,
        };
        init_at
            .or(self.follow_origin)
            .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
            .unwrap_or_default()
    }

    fn next_poll(&mut self, now: Timestamp) -> Vec<Action> {
        let elapsed = self.elapsed(now);
        let requested = self.media.requested;
        let Some(follow) = self.follow.as_mut() else {
            return self.begin_follow(now);
        };
        match follow.next(elapsed, requested) {
            FollowStep::Poll(wait) => vec![Action::PollAfter(wait)],
            FollowStep::Cancel => {
                let Stage::Published {
                    publish_id,
                    revoked,
                    ..
                } = &mut self.durable.stage
                else {
                    return Vec::new();
                };
                *revoked = true;
                let publish_id = publish_id.clone();
                vec![
                    Action::Revoke,
                    self.journal(),
                    Action::Cancel { publish_id },
                ]
            }
            FollowStep::Done(o) => self.finish(*o),
            FollowStep::Finish(o) => self.attempt_ended(*o),
        }
    }

    fn polled(&mut self, now: Timestamp, answer: StatusAnswer, media: Media) -> Vec<Action> {
        self.media = media;
        match answer {
            StatusAnswer::Read(status) => {
                let step = self.follow.as_mut().and_then(|f| f.on_status(&status));
                match step {
                    Some(FollowStep::Done(o)) => self.finish(*o),
                    Some(FollowStep::Finish(o)) => self.attempt_ended(*o),
                    _ => self.next_poll(now),
                }
            }
            StatusAnswer::Transient => self.next_poll(now),
            StatusAnswer::Refused(e) => {
                let publish_id = self.publish_id().unwrap_or_default().to_string();
                self.finish(*status_refused(&publish_id, &e))
            }
            StatusAnswer::Paused(later) => vec![Action::Defer(later)],
        }
    }

    /// An attempt ended without a post: a new init when TikTok's answer is final and a new
    /// one may succeed ([`after_failure`]), else the item's outcome.
    fn attempt_ended(&mut self, o: PublishOutcome) -> Vec<Action> {
        if o.status != Status::Failed {
            return self.finish(o);
        }
        let reason = o.error.as_ref().map_or("", |e| e.code.as_str()).to_string();
        let decision = after_failure(
            &reason,
            self.settings.video,
            self.auto(),
            self.transfer,
            &self.durable.previous_attempts,
            // Our links worked (TikTok got every byte), or they were down for a restart.
            self.media.served_whole || (self.resuming && self.settings.restarted_since_init),
        );
        let AfterFailure::Retry(next) = decision else {
            return self.finish(o);
        };
        self.durable.previous_attempts.push(PreviousAttempt {
            publish_id: o.publish_id.clone(),
            transfer: self.transfer.to_string(),
            fail_reason: reason,
        });
        self.durable.stage = Stage::Claimed;
        let mut acts = vec![Action::Revoke, self.journal()];
        self.transfer = next;
        self.url_tokens.clear();
        self.follow = None;
        self.media = Media::default();
        acts.extend(self.begin_attempt());
        acts
    }

    /// The item's outcome: it always names its transfer, its publish_id when TikTok gave one,
    /// and every earlier attempt.
    fn finish(&mut self, mut o: PublishOutcome) -> Vec<Action> {
        self.finished = true;
        o.transfer = Some(self.transfer.to_string());
        // The attempt TikTok accepted is named even when the outcome came from our side (a
        // timeout): the user needs it to find the post.
        if o.publish_id.is_none() {
            o.publish_id = self.publish_id().map(String::from);
        }
        o.previous_attempts = self.durable.previous_attempts.clone();
        vec![Action::Finish(Box::new(o))]
    }
}

/// The outcome when TikTok refuses to tell a publish_id's status: the post may exist.
pub fn status_refused(publish_id: &str, e: &ApiError) -> Box<PublishOutcome> {
    let mut o = failure(
        Status::Unknown,
        ErrorStage::Processing,
        &e.code,
        format!("TikTok no longer answers for this publish_id: {e}"),
        e.log_id.clone(),
        "the post may exist: look at the creator's TikTok profile (or inbox); move the files back into the watched folder only if it is not there".into(),
    );
    o.publish_id = Some(publish_id.to_string());
    o
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
