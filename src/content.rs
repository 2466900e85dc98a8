//! What an item is made of: its media files, checked for completeness and TikTok's limits
//! ([`media`]), and its settings, the sidecar merged with the folder's defaults ([`sidecar`]).

pub mod media;
pub mod sidecar;
