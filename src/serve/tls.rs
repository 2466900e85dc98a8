//! TLS: rustls (ring) configuration with ALPN h2 + http/1.1, certificates
//! from PEM files or a fresh self-signed one, and hot reloading through a
//! swappable certificate resolver (new handshakes get the new certificate,
//! established connections keep theirs; a broken new file keeps the old).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{ServeError, TlsSource};

/// Warn when the certificate expires sooner than this.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
/// How often the expiry of an unchanged certificate is checked again.
const EXPIRY_RECHECK: Duration = Duration::from_secs(24 * 3600);

/// Control over the live certificate: [`reload`](Self::reload) on SIGHUP,
/// [`subscribe`](Self::subscribe) to learn when a new one is installed.
#[derive(Clone, Debug)]
pub struct TlsHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: TlsSource,
    provider: Arc<CryptoProvider>,
    resolver: Arc<HotCert>,
    /// File fingerprint last loaded or tried, to reload only on change.
    seen: Mutex<Option<Fingerprint>>,
    generation: watch::Sender<u64>,
}

/// The certificate presented to new handshakes.
#[derive(Debug)]
struct HotCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for HotCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

type Fingerprint = [(u64, SystemTime, u64); 2];

/// Builds the acceptor and its reload handle for `source`.
pub(crate) fn setup(source: &TlsSource) -> Result<(TlsAcceptor, TlsHandle), ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (key, seen) = match source {
        TlsSource::Files { cert, key } => {
            let seen = fingerprint(cert, key);
            (load_files(cert, key, &provider)?, seen)
        }
        TlsSource::SelfSigned {
            hostnames,
            write_pem_to,
        } => (self_signed(hostnames, write_pem_to, &provider)?, None),
    };
    let resolver = Arc::new(HotCert(RwLock::new(Arc::new(key))));
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let handle = TlsHandle {
        inner: Arc::new(Inner {
            source: source.clone(),
            provider,
            resolver,
            seen: Mutex::new(seen),
            generation: watch::Sender::new(0),
        }),
    };
    Ok((TlsAcceptor::from(Arc::new(config)), handle))
}

impl TlsHandle {
    /// Reloads the certificate files now. On error the old certificate
    /// stays in use. A self-signed source has nothing to reload.
    pub fn reload(&self) -> Result<(), ServeError> {
        let TlsSource::Files { cert, key } = &self.inner.source else {
            return Ok(());
        };
        *self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fingerprint(cert, key);
        let new = load_files(cert, key, &self.inner.provider)?;
        *self
            .inner
            .resolver
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
        self.inner.generation.send_modify(|g| *g += 1);
        tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// Reloads on every SIGHUP until `cancel`. Not started by the server:
    /// the caller decides who owns SIGHUP.
    pub async fn reload_on_sighup(self, cancel: CancellationToken) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                got = hup.recv() => {
                    if got.is_none() {
                        return Ok(());
                    }
                    if let Err(e) = self.reload() {
                        tracing::error!(error = %e, "TLS reload on SIGHUP failed; still using the previous certificate");
                    }
                }
            }
        }
    }

    /// Counts installed reloads; `changed()` fires after each one.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Logs again if the certificate in use is close to expiry.
    fn check_current_expiry(&self) {
        let current = self
            .inner
            .resolver
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let (Some(cert), TlsSource::Files { cert: path, .. }) =
            (current.cert.first(), &self.inner.source)
        {
            check_expiry(cert, path);
        }
    }

    /// Reloads if the files' size, mtime or inode changed since last time.
    fn reload_if_changed(&self) {
        let TlsSource::Files { cert, key } = &self.inner.source else {
            return;
        };
        let now = fingerprint(cert, key);
        let before = *self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now.is_none() || now == before {
            return;
        }
        if let Err(e) = self.reload() {
            tracing::error!(error = %e, "TLS reload failed; still using the previous certificate");
        }
    }
}

/// Polls the certificate files every `interval` until `cancel`.
pub(crate) async fn watch_files(handle: TlsHandle, interval: Duration, cancel: CancellationToken) {
    if !matches!(handle.inner.source, TlsSource::Files { .. }) {
        return;
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut expiry_checked = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {
                let h = handle.clone();
                // metadata and small reads: keep them off the async workers
                let _ = tokio::task::spawn_blocking(move || h.reload_if_changed()).await;
                if expiry_checked.elapsed() >= EXPIRY_RECHECK {
                    expiry_checked = tokio::time::Instant::now();
                    handle.check_current_expiry();
                }
            }
        }
    }
}

fn fingerprint(cert: &Path, key: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let one = |p: &Path| {
        let m = fs::metadata(p).ok()?;
        Some((m.len(), m.modified().ok()?, m.ino()))
    };
    Some([one(cert)?, one(key)?])
}

fn tls_err(path: &Path, reason: impl Into<String>) -> ServeError {
    ServeError::TlsFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ServeError> {
    let data = fs::read(path).map_err(|e| tls_err(path, format!("cannot read: {e}")))?;
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(tls_err(path, "file is empty"));
    }
    Ok(data)
}

/// Loads a PEM chain and key and checks that they belong together.
fn load_files(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, ServeError> {
    let cert_pem = read_pem(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(cert, format!("invalid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(tls_err(
            cert,
            "no certificate found (expected a BEGIN CERTIFICATE block)",
        ));
    }
    let key_pem = read_pem(key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => tls_err(
            key,
            "no private key found (expected a BEGIN PRIVATE KEY block)",
        ),
        e => tls_err(key, format!("invalid PEM: {e}")),
    })?;
    check_expiry(&chain[0], cert);
    CertifiedKey::from_der(chain, private, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            tls_err(key, "private key does not match the certificate")
        }
        e => tls_err(key, format!("unusable private key: {e}")),
    })
}

/// Logs when the certificate has expired or will within 14 days.
fn check_expiry(cert: &CertificateDer<'_>, path: &Path) {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        tracing::warn!(cert = %path.display(), "cannot read the certificate's expiry date");
        return;
    };
    let not_after = parsed.validity().not_after.timestamp();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let left = not_after - now;
    if left <= 0 {
        tracing::error!(cert = %path.display(), "TLS certificate has expired; TikTok will refuse it");
    } else if left < EXPIRY_WARNING.as_secs() as i64 {
        tracing::warn!(cert = %path.display(), days_left = left / 86400, "TLS certificate expires soon");
    }
}

/// Creates a self-signed certificate and writes its PEM atomically.
fn self_signed(
    hostnames: &[String],
    pem_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, ServeError> {
    let generated = rcgen::generate_simple_self_signed(hostnames.to_vec())
        .map_err(|e| ServeError::SelfSigned(e.to_string()))?;
    write_atomically(pem_path, generated.cert.pem().as_bytes()).map_err(|source| {
        ServeError::WritePem {
            path: pem_path.to_path_buf(),
            source,
        }
    })?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    CertifiedKey::from_der(vec![generated.cert.der().clone()], key, provider)
        .map_err(|e| ServeError::SelfSigned(e.to_string()))
}

/// temp file in the same directory + fsync + rename + fsync(dir).
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
