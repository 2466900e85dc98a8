//! The API endpoints as methods of [`Client`]: OAuth token exchange, refresh and revoke (flat
//! form-encoded calls), user info, creator info, the three inits, status and cancel (JSON
//! envelope calls). Each method takes the access token as a [`Secret`]; which token to use is
//! the token manager's business.

use serde::Serialize;

use super::client::{Client, Failure};
use super::error::{ApiError, Endpoint, InitError};
use super::secret::Secret;
use super::wire::{
    self, ContentInit, CreatorInfo, InboxVideoInit, InitResponse, PublishIdBody, PublishStatus,
    StatusData, TokenResponse, UserInfo, UserInfoData, VideoInit,
};

/// Which init endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    /// `video/init` (direct post).
    Video,
    /// `inbox/video/init` (draft).
    InboxVideo,
    /// `content/init` (photos, both modes).
    Content,
}

impl InitKind {
    pub fn path(self) -> &'static str {
        match self {
            Self::Video => wire::VIDEO_INIT,
            Self::InboxVideo => wire::INBOX_VIDEO_INIT,
            Self::Content => wire::CONTENT_INIT,
        }
    }

    /// The kind for one of the three init paths (as `post::InitRequest` names them).
    pub fn from_path(path: &str) -> Option<Self> {
        [Self::Video, Self::InboxVideo, Self::Content]
            .into_iter()
            .find(|k| k.path() == path)
    }

    pub fn endpoint(self) -> Endpoint {
        match self {
            Self::Video => Endpoint::VideoInit,
            Self::InboxVideo => Endpoint::InboxVideoInit,
            Self::Content => Endpoint::ContentInit,
        }
    }
}

/// Form body of a token or revoke call; `Debug` is not derived so it cannot leak.
struct Form(Vec<(&'static str, String)>);

impl Client {
    async fn oauth<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        path: &str,
        form: Form,
    ) -> Result<T, ApiError> {
        let url = self.url(path);
        self.with_retries(endpoint, None, || async {
            let request = self
                .inner
                .http
                .post(&url)
                .timeout(self.inner.config.request_timeout)
                .form(&form.0);
            let answer = self.send(endpoint, request).await?;
            self.decode_oauth(endpoint, answer)
        })
        .await
        .map_err(Failure::into_error)
    }

    fn client_form(&self) -> Vec<(&'static str, String)> {
        vec![
            ("client_key", self.inner.config.client_key.clone()),
            (
                "client_secret",
                self.inner.config.client_secret.expose().to_string(),
            ),
        ]
    }

    /// Exchanges an authorization code (tiktok-api.md §3.4). `redirect_uri` must be exactly the
    /// one on the authorize URL.
    pub async fn exchange_code(
        &self,
        code: &Secret,
        code_verifier: &Secret,
        redirect_uri: &str,
    ) -> Result<TokenResponse, ApiError> {
        let mut form = self.client_form();
        form.extend([
            ("code", code.expose().to_string()),
            ("grant_type", "authorization_code".to_string()),
            ("redirect_uri", redirect_uri.to_string()),
            ("code_verifier", code_verifier.expose().to_string()),
        ]);
        self.oauth(Endpoint::TokenExchange, wire::OAUTH_TOKEN, Form(form))
            .await
    }

    /// Refreshes an access token (tiktok-api.md §3.5). The answer's refresh token replaces the
    /// old one, which TikTok may already have invalidated.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenResponse, ApiError> {
        let mut form = self.client_form();
        form.extend([
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.expose().to_string()),
        ]);
        self.oauth(Endpoint::Refresh, wire::OAUTH_TOKEN, Form(form))
            .await
    }

    /// Revokes the grant behind an access token (tiktok-api.md §3.6).
    pub async fn revoke(&self, access_token: &Secret) -> Result<(), ApiError> {
        let mut form = self.client_form();
        form.push(("token", access_token.expose().to_string()));
        let _: serde_json::Value = self
            .oauth(Endpoint::Revoke, wire::OAUTH_REVOKE, Form(form))
            .await?;
        Ok(())
    }

    /// One JSON call with the envelope, budget and retries.
    async fn call<T, B>(
        &self,
        endpoint: Endpoint,
        token: &Secret,
        request: impl Fn() -> reqwest::RequestBuilder,
        body: Option<&B>,
    ) -> Result<T, Failure>
    where
        T: serde::de::DeserializeOwned,
        B: Serialize + ?Sized,
    {
        self.with_retries(endpoint, Some(token), || async {
            let mut builder = request()
                .bearer_auth(token.expose())
                .timeout(self.inner.config.request_timeout);
            if let Some(body) = body {
                builder = builder
                    .header("Content-Type", "application/json; charset=UTF-8")
                    .body(serde_json::to_vec(body).map_err(|e| {
                        Failure::NotSent(ApiError::transport(
                            endpoint,
                            "request_not_serializable",
                            e.to_string(),
                        ))
                    })?);
            }
            let answer = self.send(endpoint, builder).await?;
            self.decode_envelope(endpoint, answer)
        })
        .await
    }

    fn post(&self, path: &str) -> impl Fn() -> reqwest::RequestBuilder + '_ {
        let url = self.url(path);
        move || self.inner.http.post(&url)
    }

    /// `GET /v2/user/info/` with open_id, union_id, avatar_url, display_name and username.
    pub async fn user_info(&self, token: &Secret) -> Result<UserInfo, ApiError> {
        self.user_info_fields(token, wire::USER_INFO_FIELDS).await
    }

    /// `GET /v2/user/info/` with only `fields` (comma-separated): each field needs its scope
    /// (`username` needs `user.info.profile`), so ask only for what was granted.
    pub async fn user_info_fields(
        &self,
        token: &Secret,
        fields: &str,
    ) -> Result<UserInfo, ApiError> {
        let url = format!("{}?fields={fields}", self.url(wire::USER_INFO));
        let data: UserInfoData = self
            .call(
                Endpoint::UserInfo,
                token,
                || self.inner.http.get(&url),
                None::<&()>,
            )
            .await
            .map_err(Failure::into_error)?;
        Ok(data.user)
    }

    /// `creator_info/query`: what this creator may post now. Spam/cap errors arrive as HTTP 200.
    pub async fn creator_info(&self, token: &Secret) -> Result<CreatorInfo, ApiError> {
        self.call(
            Endpoint::CreatorInfo,
            token,
            self.post(wire::CREATOR_INFO),
            Some(&serde_json::json!({})),
        )
        .await
        .map_err(Failure::into_error)
    }

    /// Any init with a prepared body (what `post::init_request` builds). Retries only answers
    /// that prove nothing was created (429, 5xx); a lost answer is [`InitError::MaybeSent`].
    pub async fn init<B: Serialize + ?Sized>(
        &self,
        token: &Secret,
        kind: InitKind,
        body: &B,
    ) -> Result<InitResponse, InitError> {
        let endpoint = kind.endpoint();
        let result: Result<InitResponse, Failure> = self
            .call(endpoint, token, self.post(kind.path()), Some(body))
            .await;
        match result {
            Ok(init) => {
                tracing::info!(endpoint = endpoint.name(), publish_id = %init.publish_id, "init accepted");
                Ok(init)
            }
            Err(Failure::MaybeSent(e)) => Err(InitError::MaybeSent(e)),
            Err(Failure::NotSent(e) | Failure::Answered(e)) => Err(InitError::NotCreated(e)),
        }
    }

    /// Waits until an init of `kind` would be sent at once under the rate budget (see
    /// [`super::budget::RateBudget::wait_for_slot`]).
    pub async fn wait_for_init_slot(&self, token: &Secret, kind: InitKind) {
        if let Some(bucket) = super::budget::Bucket::for_endpoint(kind.endpoint()) {
            self.inner.budget.wait_for_slot(token, bucket).await;
        }
    }

    pub async fn video_init(
        &self,
        token: &Secret,
        body: &VideoInit,
    ) -> Result<InitResponse, InitError> {
        self.init(token, InitKind::Video, body).await
    }

    pub async fn inbox_video_init(
        &self,
        token: &Secret,
        body: &InboxVideoInit,
    ) -> Result<InitResponse, InitError> {
        self.init(token, InitKind::InboxVideo, body).await
    }

    pub async fn content_init(
        &self,
        token: &Secret,
        body: &ContentInit,
    ) -> Result<InitResponse, InitError> {
        self.init(token, InitKind::Content, body).await
    }

    /// `status/fetch` for a publish_id.
    pub async fn status_fetch(
        &self,
        token: &Secret,
        publish_id: &str,
    ) -> Result<PublishStatus, ApiError> {
        let body = PublishIdBody {
            publish_id: publish_id.to_string(),
        };
        let data: StatusData = self
            .call(
                Endpoint::StatusFetch,
                token,
                self.post(wire::STATUS_FETCH),
                Some(&body),
            )
            .await
            .map_err(Failure::into_error)?;
        Ok(data.into())
    }

    /// `cancel` of a PULL_FROM_URL download (best effort at TikTok's side).
    pub async fn cancel(&self, token: &Secret, publish_id: &str) -> Result<(), ApiError> {
        let body = PublishIdBody {
            publish_id: publish_id.to_string(),
        };
        let _: serde_json::Value = self
            .call(
                Endpoint::Cancel,
                token,
                self.post(wire::CANCEL),
                Some(&body),
            )
            .await
            .map_err(Failure::into_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three init paths map to their kinds and back; other paths do not.
    #[test]
    fn init_kinds_round_trip() {
        for kind in [InitKind::Video, InitKind::InboxVideo, InitKind::Content] {
            assert_eq!(InitKind::from_path(kind.path()), Some(kind));
            assert!(kind.endpoint().is_init());
        }
        assert_eq!(InitKind::from_path(wire::STATUS_FETCH), None);
    }
}
