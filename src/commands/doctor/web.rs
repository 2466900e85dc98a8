//! The checks that ask over the network: TikTok's clock, `public_url` (name, DNS, port), its
//! certificate (chain and name against the system's roots, expiry), `/healthz` by the public
//! name with no redirect, and the verification files.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::Finding;
use crate::config::Config;
use crate::support::diagnostic::display_path;

/// Time allowed for each network step.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Warn when the certificate expires sooner than this.
const EXPIRY_WARNING_DAYS: i64 = 14;
/// Clock skew tolerated without a word, and the skew that fails.
const SKEW_WARN: u64 = 30;
const SKEW_FAIL: u64 = 300;

pub(super) async fn checks(config: &Config, extra_ca: Option<&Path>) -> Vec<Finding> {
    let mut out = vec![clock(config).await];
    let url = &config.server.public_url;
    let name = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    out.extend(public_url(url, &name, port));
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((name.as_str(), port))).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(e)) => {
                out.push(
                Finding::fail("public_url", format!("{name} does not resolve: {e}")).help(
                    "add a DNS record for the name that points at this machine's public address",
                ),
            );
                Vec::new()
            }
            Err(_) => {
                out.push(Finding::fail(
                    "public_url",
                    format!(
                        "{name} did not resolve within {}",
                        crate::support::duration::format(TIMEOUT)
                    ),
                ));
                Vec::new()
            }
        };
    if !addrs.is_empty() {
        if url.scheme() == "https" {
            out.push(certificate(&addrs, &name, extra_ca).await);
        }
        out.push(healthz(url).await);
    }
    out.push(verification(config));
    out
}

fn public_url(url: &url::Url, name: &str, port: u16) -> Vec<Finding> {
    let mut out = Vec::new();
    if url.scheme() != "https" {
        out.push(
            Finding::fail(
                "public_url",
                format!("{url} is not https; TikTok fetches only https URLs"),
            )
            .help(
                "use https:// with a certificate for the name (see README: With the real TikTok)",
            ),
        );
    }
    if url
        .host()
        .is_some_and(|h| !matches!(h, url::Host::Domain(_)))
    {
        out.push(
            Finding::fail(
                "public_url",
                format!("{name} is an IP address; TikTok verifies domains and URL prefixes, not addresses"),
            )
            .help("use a domain name you can verify in the TikTok developer portal"),
        );
    } else if name == "localhost" || name.ends_with(".localhost") {
        out.push(Finding::warn(
            "public_url",
            format!(
                "{name} names this machine only; TikTok cannot fetch from it (fine for the sandbox)"
            ),
        ));
    }
    if port != 443 {
        out.push(
            Finding::warn("public_url", format!("port {port}, not 443"))
                .help("TikTok documents fetching https URLs; serve them on 443 (a port forward or a reverse proxy) if pulls fail"),
        );
    }
    if out.is_empty() {
        out.push(Finding::ok(
            "public_url",
            format!("{url} is an https URL on a domain"),
        ));
    }
    out
}

/// The chain the server presents, kept without judging it; judged afterwards with the real
/// verifier so the finding can name what is wrong.
#[derive(Debug)]
struct Capture {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
        chain.push(end_entity.clone().into_owned());
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The chain presented by the first of `addrs` that completes a handshake.
async fn presented_chain(
    addrs: &[SocketAddr],
    name: &str,
    provider: &Arc<CryptoProvider>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let capture = Arc::new(Capture {
        chain: Mutex::new(Vec::new()),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut last = String::from("no address");
    for addr in addrs {
        let handshake = async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            connector.connect(server_name.clone(), tcp).await
        };
        match tokio::time::timeout(TIMEOUT, handshake).await {
            Ok(Ok(_)) => {
                return Ok(std::mem::take(
                    &mut *capture.chain.lock().unwrap_or_else(PoisonError::into_inner),
                ));
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => {
                last = format!(
                    "{addr}: no TLS handshake within {}",
                    crate::support::duration::format(TIMEOUT)
                )
            }
        }
    }
    Err(last)
}

fn roots(extra_ca: Option<&Path>) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca
        && let Ok(certs) = CertificateDer::pem_file_iter(path)
    {
        roots.add_parsable_certificates(certs.flatten());
    }
    roots
}

/// What the end-entity certificate says about itself.
struct Facts {
    not_after: jiff::Timestamp,
    names: Vec<String>,
    issuer: String,
}

fn facts(der: &CertificateDer<'_>) -> Option<Facts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = jiff::Timestamp::from_second(cert.validity().not_after.timestamp()).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => {
                    names.push(format!("{ip:?}"))
                }
                _ => {}
            }
        }
    }
    let issuer = cert
        .issuer()
        .iter_organization()
        .chain(cert.issuer().iter_common_name())
        .find_map(|a| a.as_str().ok().map(str::to_string))
        .unwrap_or_else(|| cert.issuer().to_string());
    Some(Facts {
        not_after,
        names,
        issuer,
    })
}

async fn certificate(addrs: &[SocketAddr], name: &str, extra_ca: Option<&Path>) -> Finding {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = match presented_chain(addrs, name, &provider).await {
        Ok(chain) if !chain.is_empty() => chain,
        Ok(_) => return Finding::fail("certificate", format!("{name} presented no certificate")),
        Err(e) => {
            return Finding::fail("certificate", format!("no TLS connection to {name} ({e})"))
                .help("start the service and check server.tls");
        }
    };
    let Some(facts) = facts(&chain[0]) else {
        return Finding::fail(
            "certificate",
            format!("{name} presented a certificate that cannot be read"),
        );
    };
    let renew = "renew it (e.g. certbot renew); tokdrop picks up the new files without a restart";
    let verifier =
        match WebPkiServerVerifier::builder_with_provider(Arc::new(roots(extra_ca)), provider)
            .build()
        {
            Ok(v) => v,
            Err(e) => {
                return Finding::fail(
                    "certificate",
                    format!("no trusted roots on this system: {e}"),
                )
                .help("install the ca-certificates package");
            }
        };
    let server_name = match ServerName::try_from(name.to_string()) {
        Ok(n) => n,
        Err(e) => return Finding::fail("certificate", format!("{name}: {e}")),
    };
    let date = facts.not_after.strftime("%Y-%m-%d").to_string();
    let verdict = verifier.verify_server_cert(
        &chain[0],
        &chain[1..],
        &server_name,
        &[],
        UnixTime::since_unix_epoch(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        ),
    );
    let days = (facts.not_after.as_second() - jiff::Timestamp::now().as_second()) / 86_400;
    match verdict {
        Ok(_) if days < EXPIRY_WARNING_DAYS => Finding::warn(
            "certificate",
            format!("valid for {name}, but it expires on {date}, in {days} days"),
        )
        .help(renew),
        Ok(_) => Finding::ok(
            "certificate",
            format!(
                "valid for {name}, issued by {}, expires on {date} (in {days} days)",
                facts.issuer
            ),
        ),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        )) => Finding::fail("certificate", format!("the certificate of {name} expired on {date}")).help(renew),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Finding::fail(
            "certificate",
            format!(
                "the certificate is not valid for {name}; it names {}",
                if facts.names.is_empty() { "no host".to_string() } else { facts.names.join(", ") }
            ),
        )
        .help(format!("get a certificate for {name} (e.g. certbot certonly -d {name})")),
        Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Finding::fail(
            "certificate",
            format!(
                "the certificate of {name} is not signed by an authority this system trusts (issuer: {})",
                facts.issuer
            ),
        )
        .help("TikTok fetches only from publicly trusted certificates: use one from Let's Encrypt, not a self-signed one, and serve the full chain"),
        Err(e) => Finding::fail("certificate", format!("the certificate of {name} is refused: {e}")),
    }
}

async fn healthz(public: &url::Url) -> Finding {
    let Ok(url) = public.join("healthz") else {
        return Finding::fail("healthz", format!("{public}healthz is not a URL"));
    };
    // Trust is the certificate check's question; this one asks whether the name leads here.
    crate::tiktok::client::install_crypto_provider();
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .timeout(TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return Finding::fail("healthz", e.to_string()),
    };
    match client.get(url.clone()).send().await {
        Ok(r) if r.status().is_redirection() => {
            let to = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(crate::support::diagnostic::printable)
                .unwrap_or_default()
                .into_owned();
            Finding::fail(
                "healthz",
                format!("{url} redirects ({}) to {to}; TikTok does not follow redirects", r.status().as_u16()),
            )
            .help("point public_url at tokdrop itself, or at a proxy that forwards without redirecting")
        }
        Ok(r) if r.status().is_success() => Finding::ok("healthz", format!("{url} answers from this host")),
        Ok(r) => Finding::fail("healthz", format!("{url} answers {}, not 200", r.status().as_u16()))
            .help("point public_url at tokdrop's media server (server.listen)"),
        Err(e) => Finding::fail("healthz", format!("cannot reach {url}: {}", root_cause(&e)))
            .help("start the service (systemctl start tokdrop) and check that the name leads to this machine (DNS, firewall, port forward)"),
    }
}

/// The innermost cause of an error, which names what really happened.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn clock(config: &Config) -> Finding {
    let url = format!(
        "{}/v2/user/info/",
        config.tiktok.api_base.as_str().trim_end_matches('/')
    );
    crate::tiktok::client::install_crypto_provider();
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return Finding::fail("clock", e.to_string()),
    };
    let answer = match client.get(&url).send().await {
        Ok(a) => a,
        Err(e) => {
            return Finding::fail(
                "clock",
                format!(
                    "cannot reach TikTok at {}: {}",
                    config.tiktok.api_base,
                    root_cause(&e)
                ),
            )
            .help("check the network (and a proxy or firewall in the way)");
        }
    };
    let theirs = answer
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let Some(theirs) = theirs else {
        return Finding::warn(
            "clock",
            "TikTok's answer has no Date header to compare with",
        );
    };
    let now = SystemTime::now();
    let (skew, behind) = match theirs.duration_since(now) {
        Ok(d) => (d.as_secs(), true),
        Err(e) => (e.duration().as_secs(), false),
    };
    if skew <= SKEW_WARN {
        return Finding::ok("clock", format!("within {SKEW_WARN} s of TikTok's"));
    }
    let shown = if skew >= 120 {
        crate::support::duration::format(Duration::from_secs((skew + 30) / 60 * 60))
    } else {
        crate::support::duration::format(Duration::from_secs(skew))
    };
    let msg = format!(
        "this machine's clock is {shown} {} TikTok's",
        if behind { "behind" } else { "ahead of" }
    );
    let finding = if skew > SKEW_FAIL {
        Finding::fail("clock", msg)
    } else {
        Finding::warn("clock", msg)
    };
    finding.help("turn on time synchronisation: timedatectl set-ntp true")
}

fn verification(config: &Config) -> Finding {
    let Some(dir) = &config.server.verification_dir else {
        return Finding::ok(
            "verification",
            "no verification_dir: the domain is verified in the portal by a DNS record",
        );
    };
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("tiktok") && n.ends_with(".txt"))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        Finding::fail(
            "verification",
            format!("no TikTok verification file (tiktok….txt) in {}", display_path(dir)),
        )
        .help("download the URL-prefix verification file from the TikTok developer portal into that folder")
    } else {
        Finding::ok(
            "verification",
            format!("serving {} from {}", names.join(", "), display_path(dir)),
        )
    }
}
