//! HTTPS and WSS served directly with rustls: loading the certificate and key, the handshake
//! with a time limit (run by `crate::listen` in each connection's own task), and the rule that
//! plain HTTP stays on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{InconsistentKeys, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where the PEM certificate chain and private key are.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The server's certificate first, then the intermediates.
    pub cert: PathBuf,
    /// PKCS#8, RSA (PKCS#1) or EC (SEC1) private key of the first certificate.
    pub key: PathBuf,
}

impl TlsConfig {
    /// Reads and checks both files: each error names the file and what is wrong with it.
    pub fn load(&self) -> anyhow::Result<Arc<ServerConfig>> {
        let chain = read_chain(&self.cert)?;
        let key = read_key(&self.key)?;
        // Explicitly ring: the process-wide default provider may be unset, or another one.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("the ring provider offers no TLS version")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => anyhow!(
                    "the TLS key {} does not match the certificate {}",
                    self.key.display(),
                    self.cert.display()
                ),
                e => anyhow!(
                    "cannot use the TLS certificate {} with the key {}: {e}",
                    self.cert.display(),
                    self.key.display()
                ),
            })?;
        // We serve HTTP/1.1 only; saying so lets a client that offers h2 fall back at once.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the TLS certificate {}", path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("the TLS certificate {} is not valid PEM", path.display()))?;
    if chain.is_empty() {
        bail!(
            "no certificate (BEGIN CERTIFICATE) in the TLS certificate file {}",
            path.display()
        );
    }
    Ok(chain)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the TLS key {}", path.display()))?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => bail!(
            "no private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) in the TLS key file {}",
            path.display()
        ),
        Err(e) => {
            Err(e).with_context(|| format!("the TLS key {} is not valid PEM", path.display()))
        }
    }
}

/// Plain HTTP carries device tokens in the clear, so it is served only on loopback (development,
/// or a proxy on the same machine) unless the operator says a proxy in front terminates TLS.
pub fn check_plain_http(addr: SocketAddr, allow_insecure: bool) -> anyhow::Result<()> {
    if allow_insecure || addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    bail!(
        "refusing to serve plain HTTP on {addr}: give --tls-cert and --tls-key, or --allow-insecure when a TLS-terminating proxy is in front"
    )
}

/// Runs one client's TLS handshake, within `limit`. Each connection has a task of its own
/// (`crate::listen`), so a slow or broken client never holds up another. Failures are the
/// client's business (a plain HTTP request, an untrusted certificate, a port scanner), hence
/// debug level only.
pub(crate) async fn handshake<I>(
    acceptor: &TlsAcceptor,
    io: I,
    addr: SocketAddr,
    limit: Duration,
) -> Option<TlsStream<I>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(limit, acceptor.accept(io)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%addr, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%addr, "TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_http_is_allowed_on_loopback() {
        for a in [
            "127.0.0.1:8080",
            "127.3.2.1:80",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert!(check_plain_http(addr(a), false).is_ok(), "{a}");
        }
    }

    #[test]
    fn plain_http_off_loopback_is_refused_with_a_way_out() {
        for a in [
            "0.0.0.0:8080",
            "[::]:8080",
            "192.168.1.10:8080",
            "[2001:db8::1]:443",
        ] {
            let e = check_plain_http(addr(a), false).unwrap_err().to_string();
            assert!(e.starts_with("refusing to serve plain HTTP on "), "{e}");
            assert!(
                e.contains("--tls-cert") && e.contains("--allow-insecure"),
                "{e}"
            );
        }
    }

    #[test]
    fn allow_insecure_permits_plain_http_anywhere() {
        assert!(check_plain_http(addr("0.0.0.0:8080"), true).is_ok());
        assert!(check_plain_http(addr("[::]:8080"), true).is_ok());
    }
}
