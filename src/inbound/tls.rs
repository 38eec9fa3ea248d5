//! STARTTLS for the SMTP server: the configured certificate, or a
//! self-signed one made on first start (rcgen) and kept for the next.
//! Senders on the public internet encrypt opportunistically and do not
//! check the certificate, so a self-signed one still protects the traffic
//! from passive listeners.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::SmtpSettings;

/// The acceptor for `settings`; makes the self-signed pair if needed.
pub fn acceptor(settings: &SmtpSettings, hostname: &str) -> anyhow::Result<TlsAcceptor> {
    let (cert, key) = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => self_signed(&settings.self_signed_dir, hostname)?,
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the SMTP certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("reading the SMTP private key {}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the SMTP certificate and key do not fit together")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The paths of the kept self-signed pair, made now if missing.
fn self_signed(dir: &Path, hostname: &str) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let cert = dir.join("smtp-cert.pem");
    let key = dir.join("smtp-key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let made = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .context("making a self-signed SMTP certificate")?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, made.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for STARTTLS");
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}
