//! TLS on the node's client-facing listeners: the webhook (optionally requiring
//! client certificates, as an API server's webhook kubeconfig presents them), the
//! Jaeger HTTP query API and UI, and the Jaeger gRPC storage API. Peer traffic has its
//! own mutual TLS (`--peer-tls-*`).

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server to take them.
const ACCEPTED_BACKLOG: usize = 64;

/// The certificate, key and optional client CA the listeners serve with.
#[derive(Clone)]
pub struct ServingTls {
    certs: Vec<CertificateDer<'static>>,
    key_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

fn read(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read", path.display()))
}

impl ServingTls {
    /// Reads and checks the PEM files given with `--tls-cert`, `--tls-key` and
    /// `--http-client-ca`; errors name the flag.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> anyhow::Result<Self> {
        let cert_pem = read(cert, "--tls-cert")?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--tls-cert {}: {e}", cert.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "--tls-cert {}: no certificate in the file",
            cert.display()
        );
        let key_pem = read(key, "--tls-key")?;
        PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| anyhow::anyhow!("--tls-key {}: {e}", key.display()))?;
        let client_ca_pem = client_ca.map(|p| read(p, "--http-client-ca")).transpose()?;
        let tls = Self {
            certs,
            key_pem,
            cert_pem,
            client_ca_pem,
        };
        tls.webhook_config()?;
        Ok(tls)
    }

    fn key(&self) -> anyhow::Result<PrivateKeyDer<'static>> {
        PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| anyhow::anyhow!("--tls-key: {e}"))
    }

    fn config(&self, client_ca: Option<&[u8]>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let builder = rustls::ServerConfig::builder();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    roots
                        .add(cert.map_err(|e| anyhow::anyhow!("--http-client-ca: {e}"))?)
                        .map_err(|e| anyhow::anyhow!("--http-client-ca: {e}"))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .map_err(|e| anyhow::anyhow!("--http-client-ca: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(self.certs.clone(), self.key()?)
            .map_err(|e| anyhow::anyhow!("--tls-cert/--tls-key: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The webhook listener's settings: client certificates required when
    /// `--http-client-ca` is given.
    pub fn webhook_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        self.config(self.client_ca_pem.as_deref())
    }

    /// The query listener's settings (no client certificates; tokens authenticate).
    pub fn query_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        self.config(None)
    }

    /// The gRPC listener's settings.
    pub fn grpc_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_pem,
            &self.key_pem,
        ))
    }
}

/// A listener that hands axum only connections whose TLS handshake completed.
/// Handshakes run in their own tasks, so a slow or silent client delays nobody else.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Serves TLS with `config` on `tcp`.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, handed) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(Self { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The accept loop never ends while this listener exists.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
