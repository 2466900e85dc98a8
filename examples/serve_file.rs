//! Benchmark helper (not part of the product): serves one file with tokdrop's media server, as
//! `scripts/bench-serve` compares it with nginx. Prints the URL path on the first line.
//! Usage: cargo run --release --example serve_file -- FILE --port P [--cert C --key K | --plain]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokdrop::serve::{ItemId, Listen, Registry, ServeConfig, ServedFile, Server, TlsSource};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let file = std::fs::canonicalize(
        args.first()
            .ok_or("usage: serve_file FILE --port P [--cert C --key K | --plain]")?,
    )?;
    let port: u16 = value("--port").unwrap_or_else(|| "8443".into()).parse()?;
    let mut cfg = ServeConfig::new(Listen::Addr(SocketAddr::from(([127, 0, 0, 1], port))));
    cfg.tls = match (value("--cert"), value("--key")) {
        (Some(cert), Some(key)) => Some(TlsSource::Files {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        }),
        _ if args.iter().any(|a| a == "--plain") => None,
        _ => Some(TlsSource::SelfSigned {
            hostnames: vec!["localhost".into()],
            write_pem_to: std::env::temp_dir().join("tokdrop-serve-file.pem"),
        }),
    };
    let registry = Registry::new(Duration::from_secs(3600));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or("no file name")?;
    let published = registry.register(
        ItemId::from("bench"),
        vec![ServedFile::snapshot(name, &file)?],
    )?;
    let server = Server::bind(cfg).await?;
    println!("/{}", published[0].url_path);
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    server.run(registry, cancel).await?;
    Ok(())
}
