//! TLS for `wss://` servers: the Mozilla roots (webpki-roots) plus the roots an app adds (its
//! organisation's CA, a test CA), with ring as the crypto provider.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::Connector;

/// Built for every connection attempt: cheap next to the handshake it serves, and a bad extra
/// root shows in `last_error` like any other reason a connection failed.
pub(crate) fn connector(extra_roots: &[Vec<u8>]) -> Result<Connector, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| format!("bad root certificate: {e}"))?;
    }
    // Explicitly ring, so that the process-wide default provider never matters (it may be
    // unset, and installing one is the app's decision, not a library's).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_roots_need_no_setup() {
        assert!(connector(&[]).is_ok());
    }

    #[test]
    fn a_root_that_is_not_a_certificate_is_an_error() {
        let e = connector(&[b"not DER".to_vec()]).err().expect("an error");
        assert!(e.starts_with("bad root certificate"), "{e}");
    }
}
