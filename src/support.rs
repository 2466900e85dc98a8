//! Small pieces every part uses: the one retry policy ([`backoff`]), one user-facing problem ([`diagnostic`]), hardened YAML
//! ([`yaml`]), durations ([`duration`]), lexical paths ([`paths`]), durable file steps
//! ([`fsops`]) and the process-wide metrics ([`metrics`]).

pub mod backoff;
pub mod diagnostic;
pub mod duration;
pub mod fsops;
pub mod metrics;
pub mod paths;
pub mod yaml;
