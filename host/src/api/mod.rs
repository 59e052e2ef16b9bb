//! The Images API server (v1 and v2): connection handling, version negotiation and
//! routing.
//!
//! Requests are routed by hand: each version's surface is a match over path segments,
//! which is easier to check against Glance's endpoint lists (docs/api-v1.md,
//! docs/api-v2.md) than a router crate's DSL. Every response carries an
//! `X-Openstack-Request-Id`, which the access log records too.

pub mod body;
pub mod error;
pub(crate) mod images;
mod members;
pub mod meta;
mod v2;
pub mod versions;

use std::{convert::Infallible, io, net::SocketAddr, sync::Arc, time::Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use self::error::ApiError;
use crate::state::Tank;

/// Every response body: small JSON or a streamed image.
pub type ResponseBody = BoxBody<Bytes, io::Error>;

/// Serves the API on `listener` until the process ends.
pub async fn serve(tank: Arc<Tank>, listener: TcpListener) -> anyhow::Result<()> {
    serve_with(listener, move |peer, req| handle(tank.clone(), peer, req)).await
}

/// Accepts HTTP/1 connections on `listener` and answers each request with `handle`, until
/// the process ends: the connection handling the API and registry servers share.
pub async fn serve_with<H, F>(listener: TcpListener, handle: H) -> anyhow::Result<()>
where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Result<Response<ResponseBody>, Infallible>> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: keep serving the open connections.
                tracing::error!("accepting a connection failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(peer, req));
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(1 << 20)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended with an error: {e}");
            }
        });
    }
}

async fn handle(
    tank: Arc<Tank>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let request_id = format!("req-{}", tank_core::ImageId::random());
    let mut response = match route(tank, peer, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-openstack-request-id", v);
    }
    // Only method, path and status: headers may carry tokens and are never logged.
    tracing::info!(target: "access", %peer, %method, %path, status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64, request_id, "request");
    Ok(response)
}

/// The JSON response for an error.
pub fn error_response(e: &ApiError) -> Response<ResponseBody> {
    let mut r = json_response(e.status, e.body());
    for (name, value) in &e.headers {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            r.headers_mut().insert(*name, v);
        }
    }
    r
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=UTF-8"));
    r
}

/// A complete, in-memory body.
pub fn full(data: impl Into<Bytes>) -> ResponseBody {
    Full::new(data.into()).map_err(|never| match never {}).boxed()
}

async fn route(tank: Arc<Tank>, peer: SocketAddr, req: Request<Incoming>) -> Result<Response<ResponseBody>, ApiError> {
    let path = req.uri().path().to_owned();
    if let Some(rest) = v2::path(&path) {
        let base = versions::base_url(req.headers(), peer, &tank.api);
        return v2::route(&tank, &base, rest, peer, req).await;
    }
    let Some(rest) = v1_path(&path, req.headers()) else {
        let base = versions::base_url(req.headers(), peer, &tank.api);
        return Ok(versions::response(&base, path.trim_end_matches('/') == "/versions"));
    };
    let segments: Vec<String> =
        rest.trim_matches('/').split('/').filter(|s| !s.is_empty()).map(images::decode_segment).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let caller = authenticate(&tank, req.headers(), peer)?;
    let ctx = &caller;
    let method = req.method().clone();
    match (method, segments.as_slice()) {
        (Method::GET, [] | ["images"]) => images::list(&tank, ctx, &req, false).await,
        (Method::GET, ["images", "detail"]) => images::list(&tank, ctx, &req, true).await,
        (Method::POST, ["images"]) => images::create(&tank, ctx, req).await,
        (Method::HEAD, ["images", id]) => images::head(&tank, ctx, id).await,
        (Method::GET, ["images", id]) => images::download(&tank, ctx, id).await,
        (Method::PUT, ["images", id]) => images::update(&tank, ctx, id, req).await,
        (Method::DELETE, ["images", id]) => images::delete(&tank, ctx, id).await,
        (Method::GET, ["images", id, "members"]) => members::list(&tank, ctx, id).await,
        (Method::PUT, ["images", id, "members"]) => members::replace(&tank, ctx, id, req).await,
        (Method::PUT, ["images", id, "members", member]) => members::add(&tank, ctx, id, member, req).await,
        (Method::DELETE, ["images", id, "members", member]) => members::remove(&tank, ctx, id, member).await,
        (Method::GET, ["shared-images", member]) => members::shared_with(&tank, ctx, member).await,
        (
            _,
            []
            | ["images"]
            | ["images", "detail"]
            | ["images", _]
            | ["images", _, "members"]
            | ["images", _, "members", _]
            | ["shared-images", _],
        ) => Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed on {path}", req.method()))),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no such resource: {path}"))),
    }
}

/// The caller of a request to either API, or 401 saying what to send.
pub fn authenticate(tank: &Tank, headers: &http::HeaderMap, peer: SocketAddr) -> Result<tank_core::Caller, ApiError> {
    tank.auth.caller(headers, peer.ip()).map_err(|e| {
        ApiError::new(StatusCode::UNAUTHORIZED, e.0).with_header("www-authenticate", "Token realm=\"tank\"")
    })
}

/// The rest of a path addressed to API v1, or `None` when the version document answers:
/// Glance's E0 negotiation (reference §1.2). `/v1` and `/v1.0` select v1; any other
/// version (even `v1.1`, which the document advertises) and unversioned paths get the
/// document, unless an `Accept: application/vnd.openstack.images-v1` header selects v1.
fn v1_path<'a>(path: &'a str, headers: &http::HeaderMap) -> Option<&'a str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let (first, rest) = trimmed.split_once('/').map_or((trimmed, ""), |(f, r)| (f, r));
    if first == "versions" {
        return None;
    }
    if first.starts_with('v') && first[1..].chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return matches!(first, "v1" | "v1.0").then_some(rest);
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    match accept.strip_prefix("application/vnd.openstack.images-") {
        Some("v1" | "v1.0") => Some(path),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_negotiation_follows_e0() {
        let none = http::HeaderMap::new();
        assert_eq!(v1_path("/v1/images", &none), Some("images"));
        assert_eq!(v1_path("/v1.0/images/detail", &none), Some("images/detail"));
        assert_eq!(v1_path("/v1", &none), Some(""));
        assert_eq!(v1_path("/v1.1/images", &none), None, "v1.1 gets the version document");
        assert_eq!(v1_path("/v2/images", &none), None);
        assert_eq!(v1_path("/images", &none), None);
        assert_eq!(v1_path("/", &none), None);
        assert_eq!(v1_path("/versions", &none), None);
        let mut vnd = http::HeaderMap::new();
        vnd.insert(header::ACCEPT, "application/vnd.openstack.images-v1".parse().unwrap());
        assert_eq!(v1_path("/images", &vnd), Some("/images"));
    }
}
