//! Everything that speaks TikTok's Content Posting API and OAuth. This module imports nothing
//! from `config`, `journal` or `publish`, so it could become its own crate.
//!
//! # Layout
//! - [`wire`]: the request and response bodies, exactly as TikTok spells them.

pub mod wire;
