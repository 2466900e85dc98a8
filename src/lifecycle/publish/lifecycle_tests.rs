//! The rules of one item's life as a table (issue 13): each row is a journal state, the events
//! fed to the machine, and the actions the last event must produce (with a check of the
//! outcome or the journal where the row is about them). No I/O, time as a value.

use super::*;
use crate::lifecycle::outcome::PreviousAttempt;
use crate::support::backoff::Backoff;
use crate::tiktok::error::{AccountPause, Endpoint};
use crate::tiktok::wire::{PublishState, PublishStatus};

const MIN: u64 = 60;

fn at(secs: u64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + i64::try_from(secs).expect("small")).expect("valid")
}

fn settings(transfer: Transfer, video: bool) -> Settings {
    Settings {
        video,
        direct: true,
        transfer,
        public: false,
        self_only: true,
        publish_timeout: Duration::from_secs(2 * 3600),
        pull_start_timeout: Duration::from_secs(5 * MIN),
        backoff: Backoff::PUBLISHER,
        restarted_since_init: false,
    }
}

fn durable(stage: Stage, previous: &[(&str, &str, &str)]) -> Durable {
    Durable {
        stage,
        previous_attempts: previous
            .iter()
            .map(|(id, t, r)| PreviousAttempt {
                publish_id: Some((*id).to_string()),
                transfer: (*t).to_string(),
                fail_reason: (*r).to_string(),
            })
            .collect(),
        creator: Some("sandbox".into()),
    }
}

fn claimed() -> Stage {
    Stage::Claimed
}

fn published(transfer: &str, upload_url: Option<&str>, revoked: bool) -> Stage {
    Stage::Published {
        publish_id: "v_pub~1".into(),
        transfer: transfer.into(),
        url_tokens: if transfer == "pull" {
            vec!["tok1".into()]
        } else {
            Vec::new()
        },
        init_at: Some(at(0)),
        upload_url: upload_url.map(String::from),
        revoked,
    }
}

fn status(state: PublishState, fail: Option<&str>) -> PublishStatus {
    PublishStatus {
        state,
        fail_reason: fail.map(String::from),
        post_ids: Vec::new(),
        uploaded_bytes: None,
        downloaded_bytes: None,
    }
}

fn read(state: PublishState, fail: Option<&str>) -> Event {
    Event::Polled {
        answer: StatusAnswer::Read(status(state, fail)),
        media: Media::default(),
    }
}

fn read_served(state: PublishState, fail: Option<&str>) -> Event {
    Event::Polled {
        answer: StatusAnswer::Read(status(state, fail)),
        media: Media {
            requested: true,
            served_whole: true,
        },
    }
}

fn silent() -> Event {
    read(PublishState::ProcessingDownload, None)
}

fn api(endpoint: Endpoint, code: &str, http: u16) -> ApiError {
    ApiError {
        http_status: Some(http),
        ..ApiError::transport(endpoint, code, format!("{code} from TikTok"))
    }
}

fn accepted(id: &str, upload_url: Option<&str>) -> Event {
    Event::InitAccepted {
        publish_id: id.into(),
        upload_url: upload_url.map(String::from),
    }
}

fn transient() -> Refusal {
    Refusal::Transient { retry_after: None }
}

/// A short name per action, for the table.
fn kind(a: &Action) -> String {
    match a {
        Action::Journal(d) => format!("journal:{}", d.stage.name()),
        Action::CheckCreator => "creator_info".into(),
        Action::Expose { resume: false } => "expose".into(),
        Action::Expose { resume: true } => "expose(resume)".into(),
        Action::Revoke => "revoke".into(),
        Action::WaitInitSlot => "slot".into(),
        Action::Init { transfer } => format!("init:{transfer}"),
        Action::Upload { resume: false, .. } => "upload".into(),
        Action::Upload { resume: true, .. } => "upload(resume)".into(),
        Action::Cancel { .. } => "cancel".into(),
        Action::PollAfter(_) => "poll".into(),
        Action::RetryAfter(d) => format!("retry {}s", d.as_secs()),
        Action::Finish(o) => format!("finish:{}", o.status.as_str()),
        Action::Defer(_) => "defer".into(),
    }
}

fn outcome(acts: &[Action]) -> &PublishOutcome {
    acts.iter()
        .find_map(|a| match a {
            Action::Finish(o) => Some(o.as_ref()),
            _ => None,
        })
        .expect("a finish action")
}

fn code(o: &PublishOutcome) -> &str {
    o.error.as_ref().map_or("", |e| e.code.as_str())
}

fn journaled(acts: &[Action]) -> &Durable {
    acts.iter()
        .rev()
        .find_map(|a| match a {
            Action::Journal(d) => Some(d),
            _ => None,
        })
        .expect("a journal action")
}

type Check = fn(&Life, &[Action]);

struct Row {
    rule: &'static str,
    settings: Settings,
    durable: Durable,
    /// (seconds after the init, event); `Start` is fed first.
    events: Vec<(u64, Event)>,
    want: &'static [&'static str],
    check: Check,
}

fn no_check(_: &Life, _: &[Action]) {}

/// Runs `Start` and the row's events; returns the machine and the last event's actions.
fn run(row: Row) -> (Life, Vec<Action>, Row) {
    let mut life = Life::new(row.settings.clone(), row.durable.clone());
    let mut last = life.handle(at(0), Event::Start);
    for (secs, e) in &row.events {
        last = life.handle(at(*secs), e.clone());
    }
    (life, last, row)
}

fn rows() -> Vec<Row> {
    use PublishState::*;
    let auto = || settings(Transfer::Auto, true);
    let pull = || settings(Transfer::Pull, true);
    let photo = || settings(Transfer::Auto, false);
    vec![
        Row {
            rule: "a fresh direct item asks creator_info first",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![],
            want: &["creator_info"],
            check: no_check,
        },
        Row {
            rule: "the init intent is journaled before the init, after the rate slot",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["t".into()],
                    },
                ),
                (0, Event::SlotReady),
            ],
            want: &["journal:init_intent", "init:pull"],
            check: no_check,
        },
        Row {
            rule: "an accepted init journals the publish_id with its links, then polls at once",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["t".into()],
                    },
                ),
                (0, Event::SlotReady),
                (0, accepted("v_pub~1", None)),
            ],
            want: &["journal:published", "poll"],
            check: |_, a| {
                let Stage::Published {
                    url_tokens,
                    init_at,
                    ..
                } = &journaled(a).stage
                else {
                    panic!("published")
                };
                assert_eq!(url_tokens, &["t".to_string()]);
                assert_eq!(*init_at, Some(at(0)));
                assert_eq!(a.last(), Some(&Action::PollAfter(Duration::ZERO)));
            },
        },
        Row {
            rule: "an init whose answer was lost is never sent again: unknown, with its transfer",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (0, Event::Exposed { url_tokens: vec![] }),
                (0, Event::SlotReady),
                (0, Event::InitLost(api(Endpoint::VideoInit, "timeout", 0))),
            ],
            want: &["revoke", "finish:unknown"],
            check: |_, a| assert_eq!(outcome(a).transfer.as_deref(), Some("pull")),
        },
        Row {
            rule: "a restart with an init intent and no publish_id ends unknown (never re-sent)",
            settings: auto(),
            durable: durable(
                Stage::InitIntent {
                    at: at(0),
                    transfer: "upload".into(),
                },
                &[],
            ),
            events: vec![],
            want: &["finish:unknown"],
            check: |_, a| {
                assert_eq!(code(outcome(a)), "interrupted_after_init");
                assert_eq!(outcome(a).transfer.as_deref(), Some("upload"));
            },
        },
        Row {
            rule: "an init answered 429 created nothing: journaled back to claimed BEFORE the back-off",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (0, Event::Exposed { url_tokens: vec![] }),
                (0, Event::SlotReady),
                (
                    0,
                    Event::InitRefused(Refusal::Transient {
                        retry_after: Some(Duration::from_secs(30)),
                    }),
                ),
            ],
            want: &["journal:claimed", "retry 30s"],
            check: no_check,
        },
        Row {
            rule: "after the back-off the init waits for its slot again (journal first, then init)",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (0, Event::Exposed { url_tokens: vec![] }),
                (0, Event::SlotReady),
                (0, Event::InitRefused(transient())),
                (5, Event::BackedOff),
            ],
            want: &["slot"],
            check: no_check,
        },
        Row {
            rule: "stop requested during a back-off: stop at once, no init after the stop",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (0, Event::Exposed { url_tokens: vec![] }),
                (0, Event::SlotReady),
                (0, Event::InitRefused(transient())),
                (1, Event::Stop),
            ],
            want: &["revoke", "defer"],
            check: no_check,
        },
        Row {
            rule: "repeated 5xx answers back off by the one policy: 5 s, 10 s, 20 s",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (0, Event::Exposed { url_tokens: vec![] }),
                (0, Event::SlotReady),
                (0, Event::InitRefused(transient())),
                (5, Event::BackedOff),
                (5, Event::SlotReady),
                (5, Event::InitRefused(transient())),
                (15, Event::BackedOff),
                (15, Event::SlotReady),
                (15, Event::InitRefused(transient())),
            ],
            want: &["journal:claimed", "retry 20s"],
            check: no_check,
        },
        Row {
            rule: "creator_info answering a daily cap pauses the account; the item is not failed",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![(
                0,
                Event::CreatorRefused(Refusal::Paused(Later::account(
                    AccountPause::DailyPostCap,
                    "spam_risk_too_many_posts",
                ))),
            )],
            want: &["defer"],
            check: no_check,
        },
        Row {
            rule: "unaudited_client_can_only_post_to_private_accounts on a SELF_ONLY post pauses the account",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (0, Event::Exposed { url_tokens: vec![] }),
                (0, Event::SlotReady),
                (
                    0,
                    Event::InitRefused(Refusal::Item(api(Endpoint::VideoInit, UNAUDITED, 403))),
                ),
            ],
            want: &["journal:claimed", "revoke", "defer"],
            check: |_, a| {
                let Some(Action::Defer(l)) = a.last() else {
                    panic!("defer")
                };
                assert_eq!(l.code.as_deref(), Some(UNAUDITED));
            },
        },
        Row {
            rule: "a refused login (refresh refused, not only invalid_grant) pauses while following",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (
                    5,
                    Event::Polled {
                        answer: StatusAnswer::Paused(Later::account(
                            AccountPause::NeedsLogin,
                            "server_error",
                        )),
                        media: Media::default(),
                    },
                ),
            ],
            want: &["defer"],
            check: |_, a| {
                let Some(Action::Defer(l)) = a.last() else {
                    panic!("defer")
                };
                assert!(l.needs_login);
            },
        },
        Row {
            rule: "url_ownership_unverified at init under auto: the upload fallback (nothing was created)",
            settings: auto(),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (0, Event::Exposed { url_tokens: vec![] }),
                (0, Event::SlotReady),
                (
                    0,
                    Event::InitRefused(Refusal::Item(api(
                        Endpoint::VideoInit,
                        "url_ownership_unverified",
                        403,
                    ))),
                ),
            ],
            want: &["journal:claimed", "revoke", "journal:claimed", "slot"],
            check: |l, _| assert_eq!(l.transfer(), "upload"),
        },
        Row {
            rule: "resume never calls creator_info: a journaled pull is served under its old links",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![],
            want: &["expose(resume)"],
            check: no_check,
        },
        Row {
            rule: "resumed pull: polled at once after the links are back",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![(
                600,
                Event::Exposed {
                    url_tokens: vec!["tok1".into()],
                },
            )],
            want: &["poll"],
            check: no_check,
        },
        Row {
            rule: "an interrupted FILE_UPLOAD is resumed from TikTok's progress after a restart",
            settings: settings(Transfer::Upload, true),
            durable: durable(published("upload", Some("https://up/1"), false), &[]),
            events: vec![],
            want: &["upload(resume)"],
            check: no_check,
        },
        Row {
            rule: "a pull whose links were revoked before the restart is not served again: the cancel is asked again",
            settings: auto(),
            durable: durable(published("pull", None, true), &[]),
            events: vec![],
            want: &["cancel"],
            check: no_check,
        },
        Row {
            rule: "auto: a pull TikTok never started within 5 min is revoked (journaled) and cancelled",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    1,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, silent()),
                (6 * MIN, silent()),
            ],
            want: &["revoke", "journal:published", "cancel"],
            check: |_, a| {
                let Stage::Published { revoked, .. } = journaled(a).stage else {
                    panic!()
                };
                assert!(revoked);
            },
        },
        Row {
            rule: "cancel acknowledged (links revoked): the first attempt is dead, fallback to upload, its id kept",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    1,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, silent()),
                (6 * MIN, silent()),
                (6 * MIN, Event::CancelAnswered { acknowledged: true }),
            ],
            want: &["revoke", "journal:claimed", "slot"],
            check: |l, a| {
                assert_eq!(l.transfer(), "upload");
                let prev = &journaled(a).previous_attempts;
                assert_eq!(prev.len(), 1);
                assert_eq!(prev[0].publish_id.as_deref(), Some("v_pub~1"));
                assert_eq!(prev[0].fail_reason, "publish_cancelled");
            },
        },
        Row {
            rule: "cancel not acknowledged: no second init, keep following the first publish_id",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    1,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, silent()),
                (6 * MIN, silent()),
                (
                    6 * MIN,
                    Event::CancelAnswered {
                        acknowledged: false,
                    },
                ),
                (50 * MIN, silent()),
            ],
            want: &["poll"],
            check: no_check,
        },
        Row {
            rule: "…and a pull never known dead ends unknown at the timeout, never a second post",
            settings: auto(),
            durable: durable(published("pull", None, true), &[]),
            events: vec![(2 * 3600 + 1, silent())],
            want: &["finish:unknown"],
            check: |_, a| {
                assert_eq!(code(outcome(a)), "publish_timeout");
                assert_eq!(outcome(a).transfer.as_deref(), Some("pull"));
                assert_eq!(
                    outcome(a).publish_id.as_deref(),
                    Some("v_pub~1"),
                    "named, to find the post"
                );
            },
        },
        Row {
            rule: "transfer: pull has no fallback: a silent pull is followed, never cancelled",
            settings: pull(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    1,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, silent()),
                (59 * MIN, silent()),
            ],
            want: &["poll"],
            check: no_check,
        },
        Row {
            rule: "status FAILED video_pull_failed under auto (also resumed): fallback to FILE_UPLOAD",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    600,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (601, read(Failed, Some("video_pull_failed"))),
            ],
            want: &["revoke", "journal:claimed", "slot"],
            check: |l, a| {
                assert_eq!(l.transfer(), "upload");
                assert_eq!(
                    journaled(a).previous_attempts[0].fail_reason,
                    "video_pull_failed"
                );
            },
        },
        Row {
            rule: "a restart after the links were revoked: the cancel is asked again; acknowledged, the upload follows",
            settings: auto(),
            durable: durable(published("pull", None, true), &[]),
            events: vec![(1, Event::CancelAnswered { acknowledged: true })],
            want: &["revoke", "journal:claimed", "slot"],
            check: |l, a| {
                assert_eq!(l.transfer(), "upload");
                assert_eq!(
                    journaled(a).previous_attempts[0].fail_reason,
                    "publish_cancelled"
                );
            },
        },
        Row {
            rule: "a restart after the links were revoked, the cancel still not acknowledged: keep following",
            settings: auto(),
            durable: durable(published("pull", None, true), &[]),
            events: vec![(
                1,
                Event::CancelAnswered {
                    acknowledged: false,
                },
            )],
            want: &["poll"],
            check: no_check,
        },
        Row {
            rule: "a restart after the fallback was journaled: upload, earlier attempt kept",
            settings: auto(),
            durable: durable(claimed(), &[("v_pub~1", "pull", "video_pull_failed")]),
            events: vec![(0, Event::CreatorChecked(Ok("sandbox".into())))],
            want: &["slot"],
            check: |l, _| assert_eq!(l.transfer(), "upload"),
        },
        Row {
            rule: "FAILED internal: FAILED is terminal, so one new init by the same transfer",
            settings: photo(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, read(Failed, Some("internal"))),
            ],
            want: &["revoke", "journal:claimed", "expose"],
            check: no_check,
        },
        Row {
            rule: "photo_pull_failed with our links known good: one new pull",
            settings: photo(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, read_served(Failed, Some("photo_pull_failed"))),
            ],
            want: &["revoke", "journal:claimed", "expose"],
            check: no_check,
        },
        Row {
            rule: "photo_pull_failed when TikTok never got the file: failed (no blind re-post), with transfer",
            settings: photo(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, read(Failed, Some("photo_pull_failed"))),
            ],
            want: &["finish:failed"],
            check: |_, a| {
                assert_eq!(outcome(a).transfer.as_deref(), Some("pull"));
                assert_eq!(outcome(a).publish_id.as_deref(), Some("v_pub~1"));
            },
        },
        Row {
            rule: "photo_pull_failed after a restart (our links were down since the init): one new pull",
            settings: Settings {
                restarted_since_init: true,
                ..photo()
            },
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, read(Failed, Some("photo_pull_failed"))),
            ],
            want: &["revoke", "journal:claimed", "expose"],
            check: |_, a| {
                assert_eq!(
                    journaled(a).previous_attempts[0].fail_reason,
                    "photo_pull_failed"
                );
            },
        },
        Row {
            rule: "a second FAILED internal after the retry: every publish_id ends in previous_attempts",
            settings: photo(),
            durable: durable(
                published("pull", None, false),
                &[
                    ("p_pub~0", "pull", "internal"),
                    ("p_pub~00", "pull", "internal"),
                ],
            ),
            events: vec![
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (5, read(Failed, Some("internal"))),
            ],
            want: &["finish:failed"],
            check: |_, a| {
                let o = outcome(a);
                assert_eq!(o.previous_attempts.len(), 2);
                assert_eq!(o.publish_id.as_deref(), Some("v_pub~1"));
            },
        },
        Row {
            rule: "invalid_publish_id while polling: unknown with the publish_id, never failed",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (
                    5,
                    Event::Polled {
                        answer: StatusAnswer::Refused(api(
                            Endpoint::StatusFetch,
                            "invalid_publish_id",
                            400,
                        )),
                        media: Media::default(),
                    },
                ),
            ],
            want: &["finish:unknown"],
            check: |_, a| {
                let o = outcome(a);
                assert_eq!(o.publish_id.as_deref(), Some("v_pub~1"));
                assert_eq!(code(o), "invalid_publish_id");
                assert_eq!(o.transfer.as_deref(), Some("pull"));
            },
        },
        Row {
            rule: "token_not_authorized_for_specified_publish_id: unknown with the publish_id",
            settings: auto(),
            durable: durable(published("upload", None, false), &[]),
            events: vec![(
                5,
                Event::Polled {
                    answer: StatusAnswer::Refused(api(
                        Endpoint::StatusFetch,
                        "token_not_authorized_for_specified_publish_id",
                        400,
                    )),
                    media: Media::default(),
                },
            )],
            want: &["finish:unknown"],
            check: |_, a| assert_eq!(outcome(a).publish_id.as_deref(), Some("v_pub~1")),
        },
        Row {
            rule: "a status endpoint failing transiently (or answering status: null) still reaches publish_timeout",
            settings: auto(),
            durable: durable(published("upload", None, false), &[]),
            events: vec![
                (
                    5,
                    Event::Polled {
                        answer: StatusAnswer::Transient,
                        media: Media::default(),
                    },
                ),
                (
                    3600,
                    Event::Polled {
                        answer: StatusAnswer::Transient,
                        media: Media::default(),
                    },
                ),
                (
                    2 * 3600 + 5,
                    Event::Polled {
                        answer: StatusAnswer::Transient,
                        media: Media::default(),
                    },
                ),
            ],
            want: &["finish:unknown"],
            check: |_, a| {
                assert_eq!(code(outcome(a)), "publish_timeout");
                assert_eq!(outcome(a).transfer.as_deref(), Some("upload"));
                assert_eq!(
                    outcome(a).publish_id.as_deref(),
                    Some("v_pub~1"),
                    "named, to find the post"
                );
            },
        },
        Row {
            rule: "PUBLISH_COMPLETE: published, with the creator's link data",
            settings: auto(),
            durable: durable(published("upload", None, false), &[]),
            events: vec![(5, read(PublishComplete, None))],
            want: &["finish:published"],
            check: no_check,
        },
        Row {
            rule: "SEND_TO_USER_INBOX: sent to the inbox",
            settings: Settings {
                direct: false,
                ..auto()
            },
            durable: durable(published("upload", None, false), &[]),
            events: vec![(5, read(SentToUserInbox, None))],
            want: &["finish:sent_to_inbox"],
            check: no_check,
        },
        Row {
            rule: "an inbox item is checked as a draft, then served",
            settings: Settings {
                direct: false,
                ..auto()
            },
            durable: durable(claimed(), &[]),
            events: vec![(0, Event::CreatorChecked(Ok(String::new())))],
            want: &["expose"],
            check: no_check,
        },
        Row {
            rule: "an upload cut short by a failure keeps its publish_id and transfer in the result",
            settings: settings(Transfer::Upload, true),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorChecked(Ok("sandbox".into()))),
                (0, Event::SlotReady),
                (0, accepted("v_inbox_file~9", Some("https://up/9"))),
                (
                    1,
                    Event::UploadFailed(api(Endpoint::Upload, "upload_url_expired", 403)),
                ),
            ],
            want: &["finish:failed"],
            check: |_, a| {
                let o = outcome(a);
                assert_eq!(o.publish_id.as_deref(), Some("v_inbox_file~9"));
                assert_eq!(o.transfer.as_deref(), Some("upload"));
            },
        },
        Row {
            rule: "stop while following: defer, the item stays published in the journal",
            settings: auto(),
            durable: durable(published("pull", None, false), &[]),
            events: vec![
                (
                    0,
                    Event::Exposed {
                        url_tokens: vec!["tok1".into()],
                    },
                ),
                (3, Event::Stop),
            ],
            want: &["defer"],
            check: |l, _| assert_eq!(l.durable().stage.name(), "published"),
        },
        Row {
            rule: "creator_info failing transiently backs off and asks again; the refusal of the post fails it with its transfer",
            settings: settings(Transfer::Upload, true),
            durable: durable(claimed(), &[]),
            events: vec![
                (0, Event::CreatorRefused(transient())),
                (5, Event::BackedOff),
                (
                    5,
                    Event::CreatorRefused(Refusal::Item(api(
                        Endpoint::CreatorInfo,
                        "scope_permission_missed",
                        401,
                    ))),
                ),
            ],
            want: &["finish:failed"],
            check: |_, a| assert_eq!(outcome(a).transfer.as_deref(), Some("upload")),
        },
    ]
}

/// Every rule of issue 13, one row each: state + events → actions.
#[test]
fn the_rules_as_a_table() {
    for row in rows() {
        let (life, acts, row) = run(row);
        let got: Vec<String> = acts.iter().map(kind).collect();
        assert_eq!(got, row.want, "{}", row.rule);
        (row.check)(&life, &acts);
    }
}

/// In every batch of actions, at most one waits for an answer, and it comes last: the driver
/// can run a batch in order and feed the answer back.
#[test]
fn an_answer_is_awaited_only_at_the_end_of_a_batch() {
    let waits = |a: &Action| !matches!(a, Action::Journal(_) | Action::Revoke);
    for row in rows() {
        let mut life = Life::new(row.settings.clone(), row.durable.clone());
        let mut batches = vec![life.handle(at(0), Event::Start)];
        for (secs, e) in &row.events {
            batches.push(life.handle(at(*secs), e.clone()));
        }
        for b in batches {
            let n = b.iter().filter(|a| waits(a)).count();
            assert!(n <= 1, "{}: {b:?}", row.rule);
            if n == 1 {
                assert!(waits(b.last().expect("non-empty")), "{}: {b:?}", row.rule);
            }
        }
    }
}

/// Once finished, the machine does nothing more (a late answer cannot start another init).
#[test]
fn a_finished_item_ignores_late_events() {
    let mut life = Life::new(
        settings(Transfer::Auto, true),
        durable(published("upload", None, false), &[]),
    );
    life.handle(at(0), Event::Start);
    let end = life.handle(at(5), read(PublishState::PublishComplete, None));
    assert!(matches!(end.as_slice(), [Action::Finish(_)]));
    assert!(life.is_finished());
    assert!(life.handle(at(6), Event::SlotReady).is_empty());
    assert!(
        life.handle(at(6), read(PublishState::Failed, Some("internal")))
            .is_empty()
    );
}
