//! `tank registry`: Glance's registry REST API (reference §2.1, port 9191) over whichever
//! registry driver plugin the registry's configuration names, so that several API servers
//! share one set of image records through the `remote` registry driver.
//!
//! - `images.rs`: Glance's endpoints (`/images`, `/images/detail`, `/images/{id}`, members,
//!   `/shared-images/{member}`), over an images service without stores, with the caller's
//!   identity read from the headers as the API server reads it (`crate::identity`).
//! - `extension.rs`: Tank's extension under `/tank/`, the registry-driver trait over HTTP,
//!   for the remote driver: raw records, revisions, removal, `ListQuery` and statuses.
//!
//! Every image response carries its revision as `ETag: "<revision>"`, and updates accept
//! `If-Match: "<revision>"` (409 when stale): Tank's registry drivers update by
//! compare-and-swap, and this lets a client keep that guarantee across HTTP.
//!
//! Records here include `location`: the registry is internal (it binds to loopback by
//! default). Locations are never logged: the access log has method, path and status only.

pub mod config;
mod error;
mod extension;
mod images;
mod params;

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use hyper::body::Incoming;
use tank_sdk::Revision;
use tokio::net::TcpListener;

use tank_core::Caller;
use tank_images::{backend::Stores, Images};

use self::{error::RegistryError, params::Limits};
use crate::{
    api::{json_response, ResponseBody},
    identity,
    plugin::handles::Registry,
};

/// The largest request body: records are small JSON.
const MAX_BODY: usize = 4 << 20;

/// What the registry server holds.
pub struct RegistryServer {
    /// The registry driver holding the records, for the `/tank/` extension.
    pub registry: Arc<Registry>,
    /// The images service over it, without stores, for Glance's endpoints.
    pub images: Images,
    /// List page limits.
    pub limits: Limits,
}

impl RegistryServer {
    /// A server over `registry` with the configured page limits.
    pub fn new(registry: Registry, limit_param_default: u32, api_limit_max: u32) -> Self {
        let registry = Arc::new(registry);
        let settings = tank_images::Settings { page_max: api_limit_max, ..Default::default() };
        RegistryServer {
            images: Images::new(registry.clone(), Stores::none(), settings),
            registry,
            limits: Limits { default: limit_param_default, max: api_limit_max },
        }
    }

    /// Runs `f` on the blocking pool: registry-driver calls enter a plugin and may block.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Registry) -> tank_sdk::Result<T> + Send + 'static,
    ) -> Result<T, RegistryError> {
        let registry = self.registry.clone();
        Ok(tokio::task::spawn_blocking(move || f(&registry)).await??)
    }
}

/// Serves the registry API on `listener` until the process ends.
pub async fn serve(server: Arc<RegistryServer>, listener: TcpListener) -> anyhow::Result<()> {
    crate::api::serve_with(listener, move |peer, req| handle(server.clone(), peer, req)).await
}

async fn handle(
    server: Arc<RegistryServer>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let response = route(&server, req).await.unwrap_or_else(|e| e.response());
    // Only method, path and status: headers carry tokens and bodies carry locations.
    tracing::info!(target: "access", %peer, %method, %path, status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64, "request");
    Ok(response)
}

async fn route(server: &RegistryServer, req: Request<Incoming>) -> Result<Response<ResponseBody>, RegistryError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    if segments.first() == Some(&"tank") {
        return extension::route(server, req, &segments[1..]).await;
    }
    let ctx = caller(req.headers())?;
    let query = req.uri().query().unwrap_or("").to_owned();
    match (&method, segments.as_slice()) {
        (&Method::GET, [] | ["images"]) => images::list(server, &ctx, &query, false).await,
        (&Method::GET, ["images", "detail"]) => images::list(server, &ctx, &query, true).await,
        (&Method::POST, ["images"]) => {
            let body = read_json(req).await?;
            images::create(server, &ctx, body).await
        }
        (&Method::GET, ["images", id]) => images::show(server, &ctx, id).await,
        (&Method::PUT, ["images", id]) => {
            let id = id.to_string();
            let if_match = if_match(req.headers())?;
            let purge = req
                .headers()
                .get("x-glance-registry-purge-props")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            let body = read_json(req).await?;
            images::update(server, &ctx, &id, body, if_match, purge).await
        }
        (&Method::DELETE, ["images", id]) => images::delete(server, &ctx, id, if_match(req.headers())?).await,
        (&Method::GET, ["images", id, "members"]) => images::members(server, &ctx, id).await,
        (&Method::PUT, ["images", id, "members"]) => {
            let id = id.to_string();
            let body = read_json(req).await?;
            images::replace_members(server, &ctx, &id, body).await
        }
        (&Method::PUT, ["images", id, "members", member]) => {
            let (id, member) = (id.to_string(), member.to_string());
            let body = read_optional_json(req).await?;
            images::add_member(server, &ctx, &id, &member, body).await
        }
        (&Method::DELETE, ["images", id, "members", member]) => images::remove_member(server, &ctx, id, member).await,
        (&Method::GET, ["shared-images", member]) => images::shared(server, &ctx, member).await,
        (_, [] | ["images", ..] | ["shared-images", _]) => Err(RegistryError::with_status(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(RegistryError::with_status(StatusCode::NOT_FOUND, format!("no such resource: {path}"))),
    }
}

/// The caller, read as the API server reads it; the registry's callers own images as
/// their tenant.
fn caller(headers: &HeaderMap) -> Result<Caller, RegistryError> {
    identity::caller(headers, true).map_err(|e| RegistryError::with_status(StatusCode::UNAUTHORIZED, e.to_string()))
}

/// The request body, whole, refused past [`MAX_BODY`].
async fn read_body(req: Request<Incoming>) -> Result<Bytes, RegistryError> {
    crate::api::body::read_small(req.into_body(), MAX_BODY)
        .await
        .map_err(|(status, message)| RegistryError::with_status(status, message))
}

/// The request body as JSON.
async fn read_json(req: Request<Incoming>) -> Result<serde_json::Value, RegistryError> {
    let body = read_body(req).await?;
    serde_json::from_slice(&body).map_err(|e| RegistryError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// The request body as JSON, or `None` when it is empty.
async fn read_optional_json(req: Request<Incoming>) -> Result<Option<serde_json::Value>, RegistryError> {
    let body = read_body(req).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| RegistryError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// `If-Match: "<revision>"` (`*` and no header mean "any revision").
fn if_match(headers: &HeaderMap) -> Result<Option<Revision>, RegistryError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse().map(Some).map_err(|_| {
        RegistryError::bad_request(format!(
            "If-Match {text:?} is not a revision; send the ETag of the image as read, e.g. If-Match: \"3\""
        ))
    })
}

/// A JSON response carrying `revision` as its ETag.
fn with_revision(status: StatusCode, body: String, revision: Revision) -> Response<ResponseBody> {
    let mut r = json_response(status, body);
    r.headers_mut().insert(header::ETAG, etag(revision));
    r
}

fn etag(revision: Revision) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).expect("digits and quotes are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_the_etag_form() {
        let h = |v: &str| -> HeaderMap { [(header::IF_MATCH, v.parse().unwrap())].into_iter().collect() };
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        assert_eq!(if_match(&h("\"7\"")).unwrap(), Some(7));
        assert_eq!(if_match(&h("W/\"8\"")).unwrap(), Some(8));
        assert_eq!(if_match(&h("*")).unwrap(), None);
        assert_eq!(if_match(&h("\"abc\"")).unwrap_err().status, 400);
        assert_eq!(etag(12), "\"12\"");
    }
}
