//! One item's life, in the order data flows: the folders are watched ([`watch`]), files are
//! grouped into items ([`items`]) and looked at offline ([`inspect`]) by [`intake`]; an item
//! is claimed into the work area ([`claim`]) and journaled ([`journal`]); the [`pipeline`]
//! runs one [`publish`] job at a time per account (the request is built by [`post`]); the
//! result ([`outcome`]) is written next to the files and into the ledger ([`results`],
//! [`ledger`]) and handed to [`notifications`]. Items wait in their folder, lined up per
//! account, until that account's worker says it is free ([`worker_state`]); [`status`] is
//! what the service shows of it all.

pub mod claim;
pub mod inspect;
pub mod intake;
pub mod items;
pub mod journal;
pub mod ledger;
pub mod notifications;
pub mod outcome;
pub mod pipeline;
pub mod post;
pub mod publish;
pub mod results;
pub mod status;
pub mod watch;
pub mod worker_state;
