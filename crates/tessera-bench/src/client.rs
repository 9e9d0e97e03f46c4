//! The load generator's HTTP client: one keep-alive HTTP/1.1 connection per worker, made with
//! hyper's connection-level API (no pool, no cookie jar, no redirects), so every worker holds
//! exactly one connection and pays only for what it asks.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// A response, read whole.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// The `Location` header.
    pub(crate) fn location(&self) -> Result<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("no Location header")
    }

    /// `NAME=VALUE` of the cookie `name` set by this response, ready for a `Cookie` header.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| {
                pair.split_once('=')
                    .is_some_and(|(n, value)| n.trim() == name && !value.is_empty())
            })
            .map(|pair| pair.trim().to_owned())
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Fails unless the status is `expected`, quoting the start of the body.
    pub(crate) fn expect(&self, expected: StatusCode, what: &str) -> Result<()> {
        if self.status != expected {
            let text = self.text();
            let start: String = text.chars().take(200).collect();
            bail!("{what}: expected {expected}, got {}: {start}", self.status);
        }
        Ok(())
    }
}

/// A lazily (re)connected keep-alive connection to one server.
pub(crate) struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// How long each request answered since the last [`Conn::take_request_times`] took,
    /// microseconds.
    request_micros: Vec<u64>,
}

impl Conn {
    /// A connection to `addr`, opened at the first request.
    pub(crate) fn new(addr: SocketAddr) -> Result<Self> {
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            sender: None,
            request_micros: Vec::new(),
        })
    }

    /// The times of the requests answered since the last call, microseconds; forgets them.
    pub(crate) fn take_request_times(&mut self) -> std::vec::Drain<'_, u64> {
        self.request_micros.drain(..)
    }

    /// Forgets the connection (after an error); the next request opens a new one.
    pub(crate) fn reset(&mut self) {
        self.sender = None;
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        let sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let stream = tokio::net::TcpStream::connect(self.addr)
                    .await
                    .with_context(|| format!("connecting to {}", self.addr))?;
                stream.set_nodelay(true)?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                // The connection ends when its sender is dropped or the server closes it; a
                // failure there shows up as the failure of the request that was using it.
                tokio::spawn(async move { connection.await.ok() });
                sender
            }
        };
        Ok(self.sender.insert(sender))
    }

    /// Sends one request and reads the whole answer. A failure drops the connection.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        target: &str,
        headers: &[(HeaderName, &str)],
        body: Option<(&'static str, String)>,
    ) -> Result<Reply> {
        let start = Instant::now();
        let result = self.send_inner(method, target, headers, body).await;
        match &result {
            Ok(_) => self
                .request_micros
                .push(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)),
            Err(_) => self.reset(),
        }
        result
    }

    async fn send_inner(
        &mut self,
        method: Method,
        target: &str,
        headers: &[(HeaderName, &str)],
        body: Option<(&'static str, String)>,
    ) -> Result<Reply> {
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .header(header::HOST, self.host.clone());
        for (name, value) in headers {
            builder = builder.header(name, *value);
        }
        let body = match body {
            Some((content_type, body)) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                Full::new(Bytes::from(body))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body)?;
        let sender = self.sender().await?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET target`.
    pub(crate) async fn get(
        &mut self,
        target: &str,
        headers: &[(HeaderName, &str)],
    ) -> Result<Reply> {
        self.send(Method::GET, target, headers, None).await
    }

    /// `POST target` with a form body.
    pub(crate) async fn post_form(
        &mut self,
        target: &str,
        headers: &[(HeaderName, &str)],
        form: String,
    ) -> Result<Reply> {
        self.send(
            Method::POST,
            target,
            headers,
            Some(("application/x-www-form-urlencoded", form)),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(set_cookies: &[&str]) -> Reply {
        let mut headers = HeaderMap::new();
        for c in set_cookies {
            headers.append(header::SET_COOKIE, HeaderValue::from_str(c).unwrap());
        }
        Reply {
            status: StatusCode::FOUND,
            headers,
            body: Bytes::new(),
        }
    }

    #[test]
    fn finds_the_cookie_to_send_back() {
        let r = reply(&[
            "other=1; Path=/",
            "TGC=TGT-abc; Path=/cas; HttpOnly; SameSite=Lax",
        ]);
        assert_eq!(r.cookie("TGC").as_deref(), Some("TGC=TGT-abc"));
        assert_eq!(r.cookie("missing"), None);
        let cleared = reply(&["TGC=; Path=/cas; Max-Age=0"]);
        assert_eq!(cleared.cookie("TGC"), None);
    }

    #[test]
    fn expect_quotes_the_answer() {
        let mut r = reply(&[]);
        r.body = Bytes::from_static(b"<html>login form</html>");
        assert!(r.expect(StatusCode::FOUND, "x").is_ok());
        let e = r
            .expect(StatusCode::OK, "GET /login")
            .unwrap_err()
            .to_string();
        assert!(e.contains("GET /login") && e.contains("login form"), "{e}");
    }
}
