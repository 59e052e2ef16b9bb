//! A blocking HTTP client over hyper: the driver's own tokio runtime runs the requests, the
//! calling (host) thread waits for each, and the connection pool keeps connections to the
//! registry alive between calls.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};
use tank_sdk::{Error, Result};

use crate::{config::Endpoint, error};

/// A finished answer: status, `ETag` revision if any, body.
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body, read in full.
    pub body: Bytes,
}

/// Requests to one registry.
pub struct Http {
    endpoint: Endpoint,
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Runtime,
}

impl Http {
    /// A client of the registry at `endpoint`; connects lazily.
    pub fn new(endpoint: Endpoint) -> Result<Http> {
        // Two workers drive the pooled connections; the host's threads block in
        // `block_on`, each running its own request future.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tank-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::backend(format!("cannot start the remote driver's runtime: {e}")))?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(endpoint.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Http { endpoint, client, runtime })
    }

    /// The registry's base URL, for messages.
    pub fn base(&self) -> &str {
        &self.endpoint.base
    }

    /// Sends `method path` with `body` (JSON) and `If-Match: "<if_match>"`; waits for the
    /// whole answer, at most the configured timeout.
    pub fn send(&self, method: Method, path: &str, if_match: Option<u64>, body: Option<Vec<u8>>) -> Result<Answer> {
        let base = &self.endpoint.base;
        let what = format!("{method} {path}");
        let mut req = Request::builder().method(method).uri(format!("{base}{path}"));
        if let Some(revision) = if_match {
            req = req.header(header::IF_MATCH, format!("\"{revision}\""));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::invalid_input(format!("cannot build the request {what}: {e}")))?;
        let timeout = self.endpoint.timeout;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                // The chain ends in the OS's reason ("Connection refused (os error 111)").
                let mut cause: &dyn std::error::Error = &e;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                if e.is_connect() {
                    error::unreachable(base, &cause.to_string())
                } else {
                    error::unreachable(base, &format!("{what} failed: {cause}"))
                }
            })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| error::unreachable(base, &format!("the answer to {what} broke off: {e}")))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(error::timed_out(base, &what, timeout.as_secs())))
        })
    }
}
