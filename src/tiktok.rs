//! Everything that speaks TikTok's Content Posting API and OAuth. This module imports nothing
//! from the rest of tokdrop (config, journal, publish): callers hand it plain values (base
//! URLs, the client key, a [`Secret`], a token directory), so it could become its own crate.
//!
//! # Layout
//! - [`wire`]: the request and response bodies, exactly as TikTok spells them.
//! - [`error`]: `ApiError` and its classification by consequence; [`fail_reason`]: FAILED
//!   statuses explained.
//! - [`secret`]: the redacting `Secret` string; [`pkce`]: verifier, hex challenge, `state`.
//! - [`chunks`]: the FILE_UPLOAD chunk plan.
//! - [`client`]: the HTTP client and request cycle; [`api`]: the endpoints; [`upload`]: chunk
//!   PUTs; [`budget`]: per-token rate windows and the client's tries; [`backoff`]: the one
//!   back-off policy.
//! - [`token_store`]: token files and their lock; [`tokens`]: `TokenManager`, refresh rules;
//!   [`authorized`]: `TokenManager::with_token` (refresh once on a refused token).
//! - [`login`]: the OAuth login (authorize URL, loopback listener or pasted redirect, code
//!   exchange).

pub mod api;
pub mod authorized;
pub mod budget;
pub mod chunks;
pub mod client;
pub mod error;
pub mod fail_reason;
pub mod login;
pub mod pkce;
pub mod secret;
pub mod token_store;
pub mod tokens;
pub mod upload;
pub mod wire;

pub use api::InitKind;
pub use authorized::{AuthorizedError, TokenRejection};
pub use client::{Client, ClientBuildError, ClientConfig};
pub use error::{AccountPause, ApiError, AuthAction, Endpoint, ErrorClass, InitError};
pub use login::{LoginConfig, LoginError, LoginOutcome, LoopbackListener, PendingLogin};
pub use secret::Secret;
pub use token_store::{TokenFile, TokenStore};
pub use tokens::{AuthError, TokenManager};
