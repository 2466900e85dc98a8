//! Benchmark helper (not part of the product), run by `scripts/bench-hostile`: tokdrop's media
//! server keeps serving a legitimate download while N hostile connections from the same
//! address are open — silent TCP, TLS handshakes never finished, and keep-alive `/healthz`
//! pollers. Prints the download time alone and in the crowd, and their ratio.
//! Usage: cargo run --release --example hostile_crowd -- [CONNECTIONS] [FILE_MB]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokdrop::serve::{ItemId, Listen, Registry, ServeConfig, ServedFile, Server, TlsSource};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let crowd: usize = args.first().map_or(Ok(1000), |a| a.parse())?;
    let mb: usize = args.get(1).map_or(Ok(64), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("video.mp4");
    std::fs::write(&file, vec![7u8; mb * 1024 * 1024])?;
    let pem = dir.path().join("cert.pem");
    let mut cfg = ServeConfig::new(Listen::Addr(SocketAddr::from(([127, 0, 0, 1], 0))));
    cfg.tls = Some(TlsSource::SelfSigned {
        hostnames: vec!["localhost".into()],
        write_pem_to: pem.clone(),
    });
    let registry = Registry::new(Duration::from_secs(3600));
    let published = registry.register(
        ItemId::from("bench"),
        vec![ServedFile::snapshot("video.mp4", &file)?],
    )?;
    let server = Server::bind(cfg).await?;
    let addr = server.local_addr();
    let cancel = CancellationToken::new();
    tokio::spawn(server.run(registry, cancel.clone()));
    let url = format!(
        "https://localhost:{}/{}",
        addr.port(),
        published[0].url_path
    );
    let cert = reqwest::Certificate::from_pem(&std::fs::read(&pem)?)?;
    let client = || {
        reqwest::Client::builder()
            .add_root_certificate(cert.clone())
            .resolve("localhost", addr)
            .http1_only()
            .build()
    };

    let alone = download(&client()?, &url).await?;
    println!("download alone:            {:>8.1} ms", ms(alone));

    let mut held = Vec::new();
    let third = crowd / 3;
    for _ in 0..third {
        held.push(TcpStream::connect(addr).await?); // silent
    }
    for _ in 0..third {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await?; // a ClientHello, never finished
        held.push(s);
    }
    let stop_polling = CancellationToken::new();
    let pollers = crowd - 2 * third;
    for _ in 0..pollers {
        let poller = client()?;
        let healthz = format!("https://localhost:{}/healthz", addr.port());
        let stop = stop_polling.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let _ = poller.get(&healthz).send().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut in_crowd = Vec::new();
    for _ in 0..5 {
        in_crowd.push(download(&client()?, &url).await?);
    }
    in_crowd.sort();
    let median = in_crowd[2];
    println!(
        "download in a crowd of {crowd}: {:>8.1} ms (median of 5; {} silent, {} half handshakes, {} pollers)",
        ms(median),
        third,
        third,
        pollers
    );
    println!(
        "ratio crowd / alone:       {:>8.2}",
        median.as_secs_f64() / alone.as_secs_f64()
    );
    stop_polling.cancel();
    drop(held);
    cancel.cancel();
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One whole download; an error when it fails or comes back short.
async fn download(
    client: &reqwest::Client,
    url: &str,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let response = client.get(url).send().await?.error_for_status()?;
    let expected = response.content_length().unwrap_or(0);
    let mut stream = response;
    let mut got = 0u64;
    while let Some(chunk) = stream.chunk().await? {
        got += chunk.len() as u64;
    }
    if got != expected {
        return Err(format!("short download: {got} of {expected} bytes").into());
    }
    Ok(t0.elapsed())
}
