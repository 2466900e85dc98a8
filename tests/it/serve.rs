//! The HTTPS media server through real sockets on 127.0.0.1: ranges, traversal attempts, TLS
//! reloads, hardening against idle and slow clients.

mod hardening;
mod http;
mod paths;
mod support;
mod tls;
