//! STARTTLS for outgoing mail (RFC 3207). Opportunistic (RFC 7435) and
//! `required` routes do not check the certificate, since most MX hosts'
//! certificates would not pass and the alternative would be clear text;
//! the handshake itself is verified. `verify` routes check the chain and
//! the host name, as Postfix's `verify` level does. MTA-STS and DANE can
//! come later.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use crate::config::TlsPolicy;

/// Accepts any certificate, checks handshake signatures.
#[derive(Debug)]
struct Opportunistic(Arc<CryptoProvider>);

impl ServerCertVerifier for Opportunistic {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client configurations a worker uses: one that checks nothing
/// but the handshake (opportunistic and `required` routes), one verifying
/// against the Mozilla roots, and one per CA file a route names.
pub struct Connectors {
    unverified: TlsConnector,
    mozilla: TlsConnector,
    by_ca_file: HashMap<PathBuf, TlsConnector>,
}

impl Connectors {
    /// Reads every CA file now, so that a missing or empty one stops the
    /// worker at start rather than deferring mail later.
    pub fn new<'a>(ca_files: impl IntoIterator<Item = &'a Path>) -> anyhow::Result<Connectors> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let unverified = config(&provider)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Opportunistic(provider.clone())))
            .with_no_client_auth();
        let mut mozilla = RootCertStore::empty();
        mozilla.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let verified = |roots: RootCertStore| -> anyhow::Result<TlsConnector> {
            let config = config(&provider)?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(TlsConnector::from(Arc::new(config)))
        };
        let mut by_ca_file = HashMap::new();
        for path in ca_files {
            if by_ca_file.contains_key(path) {
                continue;
            }
            by_ca_file.insert(path.to_path_buf(), verified(read_roots(path)?)?);
        }
        Ok(Connectors {
            unverified: TlsConnector::from(Arc::new(unverified)),
            mozilla: verified(mozilla)?,
            by_ca_file,
        })
    }

    /// The connector for a destination's policy and CA file.
    pub fn for_policy(&self, policy: TlsPolicy, ca_file: Option<&Path>) -> &TlsConnector {
        match (policy, ca_file) {
            (TlsPolicy::Verify, Some(path)) => self.by_ca_file.get(path).unwrap_or(&self.mozilla),
            (TlsPolicy::Verify, None) => &self.mozilla,
            _ => &self.unverified,
        }
    }
}

fn config(
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<tokio_rustls::rustls::ConfigBuilder<ClientConfig, tokio_rustls::rustls::WantsVerifier>> {
    Ok(ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?)
}

/// The certificates of a PEM file, as trust anchors.
fn read_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certificates =
        CertificateDer::pem_file_iter(path).with_context(|| format!("reading CA file {}", path.display()))?;
    for certificate in certificates {
        let certificate = certificate.with_context(|| format!("reading CA file {}", path.display()))?;
        roots
            .add(certificate)
            .with_context(|| format!("a certificate in CA file {}", path.display()))?;
    }
    if roots.is_empty() {
        anyhow::bail!("CA file {} holds no certificate", path.display());
    }
    Ok(roots)
}

/// Upgrades a stream after the server's 220 reply to STARTTLS, checking
/// the certificate as `connector` does, against the name `host` (a DNS
/// name, or an IP address for a route named by address).
pub async fn upgrade(
    connector: &TlsConnector,
    host: &str,
    stream: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    connector.connect(name, stream).await
}
