//! An https endpoint with a certificate from a CA made for the test: the proxy callback of a CAS
//! client (`pgtUrl`). It records every request's query and answers with the status the test sets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// A certificate authority that exists only for one test.
pub(crate) struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM.
    pub(crate) pem: String,
}

impl TestCa {
    pub(crate) fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes the CA certificate where `[proxy] ca_file` can point.
    pub(crate) fn write_pem(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("proxy-ca.pem");
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// A server certificate for 127.0.0.1 and localhost, and its key, both PEM.
    pub(crate) fn server_pem(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server_config(&self) -> ServerConfig {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap()
    }
}

/// The callback endpoint.
pub(crate) struct Callback {
    /// `https://127.0.0.1:PORT`
    pub(crate) url: String,
    status: Arc<Mutex<u16>>,
    received: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
}

impl Callback {
    /// Serves https with a certificate of `ca`, answering 200.
    pub(crate) async fn start(ca: &TestCa) -> Self {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config()));
        let status = Arc::new(Mutex::new(200u16));
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = status.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let (tx, shared) = (tx.clone(), shared.clone());
            async move {
                let _ = tx.send(uri.to_string());
                let code = *shared.lock().unwrap();
                StatusCode::from_u16(code).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that refuses our certificate ends the handshake: nothing to serve.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Self {
            url,
            status,
            received: tokio::sync::Mutex::new(rx),
        }
    }

    /// Answers with `code` from now on.
    pub(crate) fn answer(&self, code: u16) {
        *self.status.lock().unwrap() = code;
    }

    /// The query parameters of the next request; fails the test if none comes within 20 s.
    pub(crate) async fn next(&self) -> Vec<(String, String)> {
        let mut rx = self.received.lock().await;
        let uri = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the callback was called")
            .unwrap();
        query(&uri)
    }

    /// A request already received, if any (without waiting).
    pub(crate) async fn already_received(&self) -> Option<Vec<(String, String)>> {
        self.received
            .lock()
            .await
            .try_recv()
            .ok()
            .map(|uri| query(&uri))
    }
}

fn query(uri: &str) -> Vec<(String, String)> {
    let q = uri.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}
