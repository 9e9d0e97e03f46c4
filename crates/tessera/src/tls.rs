//! TLS termination (rustls), so a small deployment needs no reverse proxy: `[server] tls_cert` and
//! `tls_key` name PEM files; SIGHUP reloads them without dropping a connection (new connections get
//! the new certificate; a bad file keeps the old one and says why).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A certificate or key that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TlsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, and the fix.
    pub reason: String,
}

/// The server's TLS settings, reloadable.
#[derive(Debug)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| TlsError {
            path: cert.to_path_buf(),
            reason: format!("cannot read a PEM certificate chain: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError {
            path: cert.to_path_buf(),
            reason: "no certificate in the file; give the PEM chain, server certificate first"
                .into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError {
        path: key.to_path_buf(),
        reason: format!("cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private))
    .map_err(|e| TlsError {
        path: key.to_path_buf(),
        reason: format!("the key does not fit the certificate: {e}"),
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Tls {
    /// Loads the certificate chain and key.
    pub fn new(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            config: RwLock::new(load(cert, key)?),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })
    }

    /// Reads the files again; on error the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.cert, &self.key)?;
        if let Ok(mut config) = self.config.write() {
            *config = fresh;
        }
        Ok(())
    }

    fn acceptor(&self) -> Option<TlsAcceptor> {
        self.config
            .read()
            .ok()
            .map(|c| TlsAcceptor::from(c.clone()))
    }
}

/// Serves `app` over TLS on `listener` until `shutdown`, then lets connections finish their
/// requests. Each request carries the peer's address (`ConnectInfo`), as with plain HTTP.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Arc<Tls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(acceptor) = tls.acceptor() else {
            continue;
        };
        let mut tcp = tcp;
        crate::app::no_delay(&mut tcp);
        let (app, builder, watcher) = (app.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service =
                tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    app.clone().oneshot(request.map(axum::body::Body::new))
                });
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(client = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
