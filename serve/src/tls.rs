//! TLS with rustls: the certificate chain and key from PEM files, HTTP/2 and HTTP/1.1 offered by
//! ALPN, so native gRPC, gRPC-Web and the page all work over one TLS port.

use std::{fs::File, io::BufReader, path::Path, sync::Arc};

use tokio_rustls::{
    rustls::{self, pki_types::PrivateKeyDer},
    TlsAcceptor,
};

/// Why TLS could not be set up, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain could not be read or parsed.
    #[error("--tls-cert {path}: {reason}")]
    Certificate {
        /// The file given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key could not be read or parsed.
    #[error("--tls-key {path}: {reason}")]
    Key {
        /// The file given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, say).
    #[error("--tls-cert and --tls-key do not form a usable pair: {0}")]
    Config(#[from] rustls::Error),
}

/// An acceptor for the certificate chain in `cert` and the private key in `key` (both PEM).
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_error = |reason: String| TlsError::Certificate {
        path: cert.display().to_string(),
        reason,
    };
    let key_error = |reason: String| TlsError::Key {
        path: key.display().to_string(),
        reason,
    };
    let mut reader = BufReader::new(File::open(cert).map_err(|e| cert_error(e.to_string()))?);
    let chain = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM certificate in the file".into()));
    }
    let mut reader = BufReader::new(File::open(key).map_err(|e| key_error(e.to_string()))?);
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut reader)
        .map_err(|e| key_error(e.to_string()))?
        .ok_or_else(|| key_error("no PEM private key in the file".into()))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
