//! Classification and hint tables for [`ApiError`].

use super::*;

fn err(endpoint: Endpoint, http_status: Option<u16>, code: &str) -> ApiError {
    ApiError {
        endpoint,
        http_status,
        code: code.into(),
        message: String::new(),
        log_id: None,
        retry_after: None,
    }
}

/// Every documented code lands in the class SPEC §4 gives it, whatever HTTP status carried it.
#[test]
fn codes_classify_by_consequence() {
    use AccountPause::*;
    use Endpoint::*;
    let item = ErrorClass::Item {
        setup_problem: false,
    };
    let setup = ErrorClass::Item {
        setup_problem: true,
    };
    let transient = ErrorClass::Transient { retry_after: None };
    let cases = [
        (
            VideoInit,
            Some(403),
            "spam_risk_too_many_posts",
            ErrorClass::AccountWide(DailyPostCap),
        ),
        (
            CreatorInfo,
            Some(200),
            "spam_risk_too_many_posts",
            ErrorClass::AccountWide(DailyPostCap),
        ),
        (
            InboxVideoInit,
            Some(403),
            "spam_risk_too_many_pending_share",
            ErrorClass::AccountWide(PendingShareCap),
        ),
        (
            CreatorInfo,
            Some(200),
            "reached_active_user_cap",
            ErrorClass::AccountWide(ActiveUserCap),
        ),
        (
            ContentInit,
            Some(403),
            "spam_risk_user_banned_from_posting",
            ErrorClass::AccountWide(BannedFromPosting),
        ),
        (
            Refresh,
            Some(200),
            "invalid_grant",
            ErrorClass::AccountWide(NeedsLogin),
        ),
        (
            TokenExchange,
            Some(200),
            "invalid_grant",
            ErrorClass::Auth(AuthAction::Relogin),
        ),
        (
            VideoInit,
            Some(401),
            "access_token_invalid",
            ErrorClass::Auth(AuthAction::RefreshOnce),
        ),
        (
            StatusFetch,
            Some(401),
            "scope_not_authorized",
            ErrorClass::Auth(AuthAction::Relogin),
        ),
        (
            UserInfo,
            Some(400),
            "scope_permission_missed",
            ErrorClass::Auth(AuthAction::Relogin),
        ),
        (VideoInit, Some(429), "rate_limit_exceeded", transient),
        (VideoInit, Some(500), "internal_error", transient),
        (VideoInit, Some(502), "bad_response", transient),
        (VideoInit, Some(503), "something_new", transient),
        (VideoInit, Some(429), "", transient),
        (StatusFetch, None, codes::TIMEOUT, transient),
        (StatusFetch, None, codes::CONNECTION, transient),
        (VideoInit, Some(400), "invalid_param", item),
        (VideoInit, Some(400), "invalid_params", item),
        (
            ContentInit,
            Some(403),
            "privacy_level_option_mismatch",
            item,
        ),
        (StatusFetch, Some(400), "invalid_publish_id", item),
        (VideoInit, Some(403), "url_ownership_unverified", setup),
        (VideoInit, Some(200), "url_ownership_unverified", setup),
        (
            VideoInit,
            Some(403),
            "unaudited_client_can_only_post_to_private_accounts",
            setup,
        ),
        (VideoInit, Some(418), "never_heard_of_it", item),
    ];
    for (endpoint, status, code, class) in cases {
        assert_eq!(
            err(endpoint, status, code).class(),
            class,
            "{endpoint} {status:?} {code}"
        );
    }
}

/// A 429 carries its wait into the class.
#[test]
fn rate_limit_carries_its_wait() {
    let mut e = err(Endpoint::VideoInit, Some(429), "rate_limit_exceeded");
    e.retry_after = Some(Duration::from_secs(60));
    assert_eq!(
        e.class(),
        ErrorClass::Transient {
            retry_after: Some(Duration::from_secs(60))
        }
    );
}

/// Hints say what the user sees and does; unknown codes still get a sentence naming the code.
#[test]
fn hints_are_actionable() {
    let cases = [
        (
            Endpoint::VideoInit,
            "spam_risk_too_many_posts",
            "daily post limit",
        ),
        (
            Endpoint::InboxVideoInit,
            "spam_risk_too_many_pending_share",
            "5 pending drafts",
        ),
        (Endpoint::Refresh, "invalid_grant", "tokdrop auth login"),
        (
            Endpoint::VideoInit,
            "url_ownership_unverified",
            "setup problem",
        ),
        (
            Endpoint::VideoInit,
            "privacy_level_option_mismatch",
            "privacy_level",
        ),
        (Endpoint::VideoInit, "rate_limit_exceeded", "retries"),
        (Endpoint::VideoInit, "brand_new_code", "`brand_new_code`"),
    ];
    for (endpoint, code, needle) in cases {
        let hint = err(endpoint, Some(403), code).hint();
        assert!(hint.contains(needle), "{code}: {hint}");
    }
}

/// Display names the endpoint, code, status and log_id, as the result file needs.
#[test]
fn display_names_everything_needed() {
    let mut e = err(Endpoint::VideoInit, Some(400), "invalid_params");
    e.message = "The chunk size is invalid".into();
    e.log_id = Some("2026LOG".into());
    assert_eq!(
        e.to_string(),
        "TikTok video/init failed: invalid_params (HTTP 400): The chunk size is invalid [log_id 2026LOG]"
    );
    let maybe = InitError::MaybeSent(ApiError::transport(
        Endpoint::VideoInit,
        codes::TIMEOUT,
        "no answer in 30s",
    ));
    assert!(maybe.may_have_reached_tiktok());
    assert!(maybe.to_string().contains("not sent again"));
}
