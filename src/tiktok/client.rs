//! The HTTP side of the API client: one reqwest client (rustls with ring, connection reuse,
//! timeouts, `tokdrop/<version>` user agent, an optional extra CA), and the generic request
//! cycle every endpoint uses: budget → send → read → decode → classify → retry. The endpoints
//! themselves are in [`super::api`] and [`super::upload`].
//!
//! The cycle keeps apart "TikTok answered" and "the request may have arrived but the answer was
//! lost", because an init in the second state must never be sent again (SPEC §4).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::budget::{Bucket, BudgetLimits, RateBudget, RetryPolicy};
use super::error::{ApiError, Endpoint, ErrorClass, codes};
use super::secret::Secret;
use super::wire::{Envelope, OAuthErrorBody};

/// Largest JSON answer read; TikTok's are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Everything the client needs; plain values so `tiktok` stays free of tokdrop's config.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://open.tiktokapis.com`, or the emulator's address.
    pub api_base: String,
    pub client_key: String,
    pub client_secret: Secret,
    /// A PEM file with extra CA certificates to trust (the sandbox's, tests').
    pub extra_ca_pem: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Whole-call timeout of API requests.
    pub request_timeout: Duration,
    /// Timeout of one chunk PUT (up to 128 MB).
    pub chunk_timeout: Duration,
    pub budget: BudgetLimits,
    pub retry: RetryPolicy,
    /// Ends the client's waits (back-off between tries, a full rate window, chunk retries) at
    /// once: the service's stop signal. The call then fails as it stands, without another try.
    /// A token that never fires by default.
    pub cancel: CancellationToken,
}

impl ClientConfig {
    pub fn new(
        api_base: impl Into<String>,
        client_key: impl Into<String>,
        client_secret: Secret,
    ) -> Self {
        Self {
            api_base: api_base.into(),
            client_key: client_key.into(),
            client_secret,
            extra_ca_pem: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            chunk_timeout: Duration::from_secs(600),
            budget: BudgetLimits::default(),
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
        }
    }
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("cannot read the CA file {path}: {source}")]
    ReadCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no usable PEM certificate: {source}")]
    BadCa {
        path: PathBuf,
        source: reqwest::Error,
    },
    #[error(
        "cannot set up the HTTPS client: {}\n  help: tokdrop trusts the system's certificate store; install the CA bundle (Debian/Ubuntu: apt install ca-certificates; Fedora: dnf install ca-certificates)",
        describe(.0)
    )]
    Http(reqwest::Error),
}

/// TikTok API client. Cheap to clone; clones share connections and the rate budget.
#[derive(Clone, Debug)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) config: ClientConfig,
    pub(super) budget: RateBudget,
}

/// An HTTP answer, read in full.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) retry_after: Option<Duration>,
    pub(super) body: Vec<u8>,
}

/// Why one attempt failed, by what it means for double posts.
#[derive(Debug)]
pub(super) enum Failure {
    /// The request never left (connect failed).
    NotSent(ApiError),
    /// Sent, answer lost or unreadable: it may have taken effect.
    MaybeSent(ApiError),
    /// TikTok answered with an error.
    Answered(ApiError),
}

impl Failure {
    pub(super) fn error(&self) -> &ApiError {
        match self {
            Self::NotSent(e) | Self::MaybeSent(e) | Self::Answered(e) => e,
        }
    }

    pub(super) fn into_error(self) -> ApiError {
        match self {
            Self::NotSent(e) | Self::MaybeSent(e) | Self::Answered(e) => e,
        }
    }
}

/// Makes ring the process's rustls crypto provider, once (reqwest and the media server then
/// share one crypto backend). Harmless when a provider is already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a client that verifies servers against the system's certificate store (the
/// distribution's CA bundle, through rustls-platform-verifier) plus `extra_ca_pem`; shared by
/// every outgoing HTTPS call (TikTok, webhooks).
pub fn http_client(
    extra_ca_pem: Option<&PathBuf>,
    connect_timeout: Duration,
) -> Result<reqwest::Client, ClientBuildError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("tokdrop/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = extra_ca_pem {
        let pem = std::fs::read(path).map_err(|source| ClientBuildError::ReadCa {
            path: path.clone(),
            source,
        })?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
            ClientBuildError::BadCa {
                path: path.clone(),
                source,
            }
        })? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(ClientBuildError::Http)
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ClientBuildError> {
        let http = http_client(config.extra_ca_pem.as_ref(), config.connect_timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                budget: RateBudget::new(config.budget),
                config,
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.inner.config.api_base.trim_end_matches('/'),
            path
        )
    }

    /// Sends one request and reads the whole answer.
    pub(super) async fn send(
        &self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, Failure> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_failure(endpoint, e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_capped(endpoint, response).await?;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Runs `attempt` with the budget and the retry policy. `token` picks the budget; an init
    /// is never retried once it may have been sent.
    pub(super) async fn with_retries<T, F, Fut>(
        &self,
        endpoint: Endpoint,
        token: Option<&Secret>,
        mut attempt: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let policy = self.inner.config.retry;
        let bucket = Bucket::for_endpoint(endpoint);
        let mut tries = 0;
        loop {
            if let (Some(token), Some(bucket)) = (token, bucket) {
                tokio::select! {
                    () = self.inner.config.cancel.cancelled() => return Err(cancelled(endpoint)),
                    () = self.inner.budget.acquire(token, bucket) => {}
                }
            }
            tries += 1;
            let failure = match attempt().await {
                Ok(value) => {
                    crate::support::metrics::metrics().tiktok_call(endpoint.name(), "ok");
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            crate::support::metrics::metrics().tiktok_call(endpoint.name(), &failure.error().code);
            let error = failure.error();
            tracing::debug!(
                endpoint = endpoint.name(),
                code = %error.code,
                http_status = ?error.http_status,
                log_id = ?error.log_id,
                "TikTok call failed"
            );
            if let (Some(token), Some(bucket), Some(429)) = (token, bucket, error.http_status) {
                self.inner.budget.exhaust(token, bucket).await;
            }
            // Inits are never retried here: the publisher records an answer that created
            // nothing in the journal before it backs off, and its back-off stops on SIGTERM.
            let retryable =
                matches!(error.class(), ErrorClass::Transient { .. }) && !endpoint.is_init();
            if !retryable || tries >= policy.attempts {
                return Err(failure);
            }
            if !self.pause(policy.delay(tries - 1, error.retry_after)).await {
                return Err(failure);
            }
        }
    }

    /// Sleeps `wait`; `false` (at once) when the caller is stopping.
    pub(super) async fn pause(&self, wait: Duration) -> bool {
        tokio::select! {
            () = self.inner.config.cancel.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// The `retry_after` to put on an error answered with `status`.
    pub(super) fn retry_after(&self, status: u16, header: Option<Duration>) -> Option<Duration> {
        match (status, header) {
            (_, Some(d)) => Some(d),
            (429, None) => Some(self.inner.config.retry.rate_limited_wait),
            _ => None,
        }
    }

    /// Decodes a `{data, error}` envelope answer into `T` (`data` of `null`/absent reads as
    /// `{}` so `T = ()`-like types work).
    pub(super) fn decode_envelope<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        answer: Answer,
    ) -> Result<T, Failure> {
        let ok_status = (200..300).contains(&answer.status);
        let envelope: Envelope = match serde_json::from_slice(&answer.body) {
            Ok(envelope) => envelope,
            Err(_) => return Err(self.unreadable(endpoint, &answer)),
        };
        if let Some(error) = envelope.error.as_ref().filter(|e| !e.is_ok()) {
            return Err(Failure::Answered(ApiError {
                endpoint,
                http_status: Some(answer.status),
                code: error.code.clone(),
                message: error.message.clone(),
                log_id: error.log_id().map(str::to_string),
                retry_after: self.retry_after(answer.status, answer.retry_after),
            }));
        }
        if !ok_status {
            return Err(self.unreadable(endpoint, &answer));
        }
        let data = match envelope.data {
            None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
            Some(data) => data,
        };
        serde_json::from_value(data).map_err(|e| {
            Failure::MaybeSent(ApiError {
                http_status: Some(answer.status),
                log_id: envelope
                    .error
                    .as_ref()
                    .and_then(|e| e.log_id().map(str::to_string)),
                ..ApiError::transport(
                    endpoint,
                    codes::BAD_RESPONSE,
                    format!("unexpected data in TikTok's answer: {e}"),
                )
            })
        })
    }

    /// Decodes a flat OAuth answer: an `error` string means failure, whatever the HTTP status.
    pub(super) fn decode_oauth<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        answer: Answer,
    ) -> Result<T, Failure> {
        let body: &[u8] = if answer.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &answer.body
        };
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(_) => return Err(self.unreadable(endpoint, &answer)),
        };
        if value.get("error").is_some_and(|e| e.is_object()) {
            // Some gateways answer OAuth calls in the API envelope shape.
            let answer = Answer {
                body: body.to_vec(),
                ..answer
            };
            return self.decode_envelope(endpoint, answer);
        }
        if let Ok(error) = serde_json::from_value::<OAuthErrorBody>(value.clone())
            && !error.error.is_empty()
        {
            return Err(Failure::Answered(ApiError {
                endpoint,
                http_status: Some(answer.status),
                code: error.error,
                message: error.error_description,
                log_id: error.log_id.filter(|l| !l.is_empty()),
                retry_after: self.retry_after(answer.status, answer.retry_after),
            }));
        }
        if !(200..300).contains(&answer.status) {
            return Err(self.unreadable(endpoint, &answer));
        }
        serde_json::from_value(value).map_err(|e| {
            Failure::MaybeSent(ApiError {
                http_status: Some(answer.status),
                ..ApiError::transport(
                    endpoint,
                    codes::BAD_RESPONSE,
                    format!("unexpected fields in TikTok's answer: {e}"),
                )
            })
        })
    }

    /// An answer without TikTok's JSON: a 2xx may have taken effect; an error status did not.
    fn unreadable(&self, endpoint: Endpoint, answer: &Answer) -> Failure {
        let error = ApiError {
            http_status: Some(answer.status),
            retry_after: self.retry_after(answer.status, answer.retry_after),
            ..ApiError::transport(
                endpoint,
                if (200..300).contains(&answer.status) {
                    codes::BAD_RESPONSE
                } else {
                    codes::HTTP_ERROR
                },
                format!("HTTP {} without a TikTok JSON body", answer.status),
            )
        };
        if (200..300).contains(&answer.status) {
            Failure::MaybeSent(error)
        } else {
            Failure::Answered(error)
        }
    }
}

/// Reads at most [`MAX_ANSWER_BYTES`]; a broken read means the answer was lost.
async fn read_capped(
    endpoint: Endpoint,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                if body.len() + bytes.len() > MAX_ANSWER_BYTES {
                    return Err(Failure::MaybeSent(ApiError::transport(
                        endpoint,
                        codes::BAD_RESPONSE,
                        "TikTok's answer is larger than 1 MiB",
                    )));
                }
                body.extend_from_slice(&bytes);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(match transport_failure(endpoint, e) {
                    Failure::NotSent(e) | Failure::MaybeSent(e) | Failure::Answered(e) => {
                        Failure::MaybeSent(e)
                    }
                });
            }
        }
    }
}

/// Maps a reqwest error: only a failed connect proves the request never left.
pub(super) fn transport_failure(endpoint: Endpoint, error: reqwest::Error) -> Failure {
    let error = error.without_url();
    let code = if error.is_timeout() {
        codes::TIMEOUT
    } else {
        codes::CONNECTION
    };
    let api = ApiError::transport(endpoint, code, describe(&error));
    if error.is_connect() || error.is_builder() {
        Failure::NotSent(api)
    } else {
        Failure::MaybeSent(api)
    }
}

/// The error and its causes on one line (reqwest's own `Display` stops at the outermost).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A call given up before it was sent because the caller is stopping.
fn cancelled(endpoint: Endpoint) -> Failure {
    Failure::NotSent(ApiError::transport(
        endpoint,
        codes::CANCELLED,
        "not sent: the service is stopping".to_string(),
    ))
}
