//! The chase store: images as objects in one Swift container, large ones as static large
//! objects whose segments live in `<container>_segments`; reads stream (ranged when asked),
//! deletes remove the manifest and every segment.

use std::{
    collections::HashSet,
    future::Future,
    sync::{Arc, Mutex},
    task::Poll,
    time::Duration,
};

use bytes::Bytes;
use reqwest::{header, Method, Response, StatusCode};
use tank_sdk::{Error, ErrorKind, OpenContext, Reader, Result, Store, Writer};
use url::Url;

use crate::{
    client::{server, Client, Req, Target},
    config::Config,
    error::{from_reqwest, from_status},
    writer::ChaseWriter,
};

/// `tank plugins --verify` and start-up should say "unreachable" quickly, whatever the
/// transfer timeout is.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Swift's listing page size (its `container_listing_limit` default).
const LISTING_PAGE: usize = 10_000;

/// What every upload and read of a store shares.
pub struct Shared {
    /// The Swift client.
    pub client: Client,
    /// The store's options.
    pub config: Arc<Config>,
    /// The store's own runtime, which the client's requests run on.
    pub runtime: tokio::runtime::Runtime,
    /// Containers known to exist, so that each upload does not ask again.
    containers: Mutex<HashSet<String>>,
}

impl Shared {
    /// Runs `f` on the store's runtime and waits for it (the host's calls block).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Makes sure `container` exists: it is looked at once per store, and created when
    /// missing if `create_container_on_put` says so.
    pub async fn ensure_container(&self, container: &str) -> Result<()> {
        if lock(&self.containers).contains(container) {
            return Ok(());
        }
        let client = &self.client;
        let what = client.what(format_args!("HEAD of container {container}"));
        let response = client.send(&what, &Req::new(Method::HEAD, Target::Container(container))).await?;
        match response.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND if self.config.create_container_on_put => {
                let what = client.what(format_args!("PUT of container {container}"));
                client.expect_success(&what, &Req::new(Method::PUT, Target::Container(container))).await?;
                tracing::info!(store = %client.store, container, "created the container");
            }
            StatusCode::NOT_FOUND => return Err(missing_container(client, container)),
            s => return Err(from_status(&what, s, "")),
        }
        lock(&self.containers).insert(container.to_owned());
        Ok(())
    }

    /// The names in `container` that start with `prefix` (every page of the listing). A
    /// missing container holds nothing.
    pub async fn list(&self, container: &str, prefix: &str) -> Result<Vec<String>> {
        let client = &self.client;
        let what = client.what(format_args!("listing of container {container}"));
        let mut names: Vec<String> = Vec::new();
        loop {
            let mut req = Req::new(Method::GET, Target::Container(container))
                .query("format", "json")
                .query("prefix", prefix)
                .query("limit", LISTING_PAGE.to_string());
            if let Some(last) = names.last() {
                req = req.query("marker", last.clone());
            }
            let response = client.send(&what, &req).await?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                return Ok(names);
            }
            let text = client.text(&what, response).await?;
            if !status.is_success() {
                return Err(from_status(&what, status, &text));
            }
            let page: Vec<serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| Error::backend(format!("{what} is not the JSON listing expected: {e}")))?;
            let count = page.len();
            names.extend(page.iter().filter_map(|o| o.get("name")?.as_str().map(str::to_owned)));
            if count < LISTING_PAGE {
                return Ok(names);
            }
        }
    }

    /// Deletes `names` in `container`, with one bulk delete per thousand where the proxy
    /// has Swift's `bulk` middleware, one request each where it does not. Names already
    /// gone are fine.
    pub async fn delete_objects(&self, container: &str, names: &[String]) -> Result<()> {
        let client = &self.client;
        let what = client.what(format_args!("bulk delete in container {container}"));
        for batch in names.chunks(1000) {
            let mut body = String::new();
            for name in batch {
                body.push_str(&object_path(container, name));
                body.push('\n');
            }
            let req = Req::new(Method::POST, Target::Account)
                .query("bulk-delete", "")
                .header(header::CONTENT_TYPE, "text/plain")
                .header(header::ACCEPT, "application/json")
                .body(body);
            let response = client.send(&what, &req).await?;
            let status = response.status();
            let text = client.text(&what, response).await?;
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(report) if report.get("Number Deleted").is_some() => bulk_result(&what, &report)?,
                // No bulk middleware: the POST reached the account itself.
                _ if status.is_success() || status == StatusCode::BAD_REQUEST => {
                    for name in batch {
                        self.delete_object(container, name).await?;
                    }
                }
                _ => return Err(from_status(&what, status, &text)),
            }
        }
        Ok(())
    }

    async fn delete_object(&self, container: &str, name: &str) -> Result<()> {
        let client = &self.client;
        let what = client.what(format_args!("DELETE in container {container}"));
        let response = client.send(&what, &Req::new(Method::DELETE, Target::Object(container, name))).await?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(from_status(&what, s, "")),
        }
    }

    /// The segments of the static large object `object`, as `container/name` paths; none
    /// when it is a plain object or missing.
    async fn manifest_segments(&self, container: &str, object: &str) -> Result<Vec<String>> {
        let client = &self.client;
        let what = client.what(format_args!("GET of the manifest of {}", location(container, object)));
        let req = Req::new(Method::GET, Target::Object(container, object)).query("multipart-manifest", "get");
        let response = client.send(&what, &req).await?;
        let status = response.status();
        let is_slo = response.headers().contains_key("x-static-large-object");
        if status == StatusCode::NOT_FOUND || (status.is_success() && !is_slo) {
            return Ok(Vec::new());
        }
        let text = client.text(&what, response).await?;
        if !status.is_success() {
            return Err(from_status(&what, status, &text));
        }
        let segments: Vec<serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| Error::backend(format!("{what} is not the JSON manifest expected: {e}")))?;
        Ok(segments
            .iter()
            .filter_map(|s| s.get("name")?.as_str().map(|n| n.trim_start_matches('/').to_owned()))
            .collect())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn missing_container(client: &Client, container: &str) -> Error {
    Error::invalid_config(client.what(format_args!(
        "container {container} does not exist in the Swift account; create it or set create_container_on_put = true"
    )))
}

/// `/container/name`, each part percent-encoded: a line of a bulk delete.
fn object_path(container: &str, name: &str) -> String {
    let mut url = Url::parse("http://x/").expect("a valid URL");
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().push(container).extend(name.split('/'));
    }
    url.path().to_owned()
}

/// A bulk delete's (or an SLO delete's) report: fine when every object is gone.
fn bulk_result(what: &str, report: &serde_json::Value) -> Result<()> {
    let errors = report.get("Errors").and_then(|e| e.as_array()).map_or(0, Vec::len);
    let status = report.get("Response Status").and_then(|s| s.as_str()).unwrap_or("");
    if errors > 0 || !status.starts_with('2') {
        let first = report.get("Errors").and_then(|e| e.get(0)).map(|e| e.to_string()).unwrap_or_default();
        return Err(Error::new(
            if status.starts_with('5') { ErrorKind::UNAVAILABLE } else { ErrorKind::BACKEND },
            format!("{what} answered {status} with {errors} errors {first}"),
        ));
    }
    Ok(())
}

/// The location Tank records for image `id` in `container`.
pub fn location(container: &str, id: &str) -> String {
    format!("swift://{container}/{id}")
}

/// Container and object of a `swift://` or `chase://` location. Glance's forms with
/// credentials are refused without repeating them.
fn parse_location(store: &Client, location: &str) -> Result<(String, String)> {
    let rest = ["swift://", "chase://"].iter().find_map(|s| location.strip_prefix(s)).ok_or_else(|| {
        let scheme = location.split_once("://").map_or("", |(s, _)| s);
        Error::invalid_input(store.what(format_args!("reads swift:// and chase:// locations, not {scheme}://")))
    })?;
    let (container, object) = rest.split_once('/').unwrap_or((rest, ""));
    if container.contains('@') || container.contains(':') {
        return Err(Error::invalid_input(store.what(
            "locations with credentials or an auth address (Glance's swift://user:key@auth/...) are not supported; \
             register the image again in this store",
        )));
    }
    if container.is_empty() || object.is_empty() || object.contains(['?', '#']) {
        return Err(Error::invalid_input(store.what("a location must be swift://<container>/<object>")));
    }
    Ok((container.to_owned(), object.to_owned()))
}

/// Images in one Swift account.
pub struct ChaseStore {
    shared: Arc<Shared>,
}

impl ChaseStore {
    fn client(&self) -> &Client {
        &self.shared.client
    }

    /// HEAD of an object: its answer when it exists, `NOT_FOUND` when not.
    async fn head(&self, what: &str, container: &str, object: &str) -> Result<Response> {
        let response = self.client().send(what, &Req::new(Method::HEAD, Target::Object(container, object))).await?;
        match response.status() {
            s if s.is_success() => Ok(response),
            StatusCode::NOT_FOUND => Err(Error::not_found(format!("{what}: no such object"))),
            s => Err(from_status(what, s, "")),
        }
    }
}

impl Store for ChaseStore {
    fn open(ctx: &OpenContext) -> Result<Self> {
        let config = Arc::new(
            Config::from_json(ctx.config.clone())
                .map_err(|e| Error::invalid_config(format!("[store.{}] {}", ctx.name, e.message)))?,
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tank-chase")
            .enable_all()
            .build()
            .map_err(|e| Error::backend(format!("store '{}': cannot start its runtime: {e}", ctx.name)))?;
        let client = {
            let _inside = runtime.enter();
            Client::new(&ctx.name, config.clone())?
        };
        // No request here: a Swift that is down must not keep the server from starting.
        // `check` authenticates, and every request reports its own failure.
        Ok(ChaseStore { shared: Arc::new(Shared { client, config, runtime, containers: Mutex::new(HashSet::new()) }) })
    }

    fn add(&self, image_id: &str, size: Option<u64>) -> Result<Box<dyn Writer>> {
        if image_id.is_empty() || image_id.contains(['/', '?', '#']) {
            return Err(Error::invalid_input(self.client().what(format_args!("{image_id:?} is not an image id"))));
        }
        let shared = &self.shared;
        let container = shared.config.container.as_str();
        shared.block_on(async {
            shared.ensure_container(container).await?;
            // Refused here rather than after the whole upload; `If-None-Match: *` on the
            // final PUT still catches a race.
            let what = self.client().what(format_args!("HEAD of image {image_id}"));
            match self.head(&what, container, image_id).await {
                Ok(_) => Err(Error::duplicate(
                    self.client().what(format_args!("image {image_id} already has data in this store")),
                )),
                Err(e) if e.kind == ErrorKind::NOT_FOUND => Ok(()),
                Err(e) => Err(e),
            }
        })?;
        Ok(Box::new(ChaseWriter::new(self.shared.clone(), image_id, size)))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let (container, object) = parse_location(self.client(), location)?;
        let client = self.client();
        let what = client.what(format_args!("GET of {}", self::location(&container, &object)));
        if length == Some(0) {
            // Nothing to read, but a missing image is still missing.
            self.shared.block_on(self.head(&what, &container, &object))?;
            return Ok(Box::new(std::io::empty()));
        }
        let mut req = Req::new(Method::GET, Target::Object(&container, &object));
        let ranged = offset > 0 || length.is_some();
        if ranged {
            let end = length.map(|l| (offset + l - 1).to_string()).unwrap_or_default();
            let range = format!("bytes={offset}-{end}");
            req.headers.push((header::RANGE, header::HeaderValue::from_str(&range).expect("digits and a dash")));
        }
        let response = self.shared.block_on(client.send(&what, &req))?;
        let (skip, left) = match response.status() {
            StatusCode::PARTIAL_CONTENT if ranged => (0, length),
            // A whole answer to a ranged request: skip to the offset here.
            StatusCode::OK => (offset, length),
            // The offset is at or past the end (also every range of an empty object).
            StatusCode::RANGE_NOT_SATISFIABLE if ranged => return Ok(Box::new(std::io::empty())),
            StatusCode::NOT_FOUND => return Err(Error::not_found(format!("{what}: no such object"))),
            status => {
                let text = self.shared.block_on(client.text(&what, response)).unwrap_or_default();
                return Err(from_status(&what, status, &text));
            }
        };
        Ok(Box::new(ChaseReader { response, pending: Bytes::new(), skip, left, shared: self.shared.clone(), what }))
    }

    fn size(&self, location: &str) -> Result<u64> {
        let (container, object) = parse_location(self.client(), location)?;
        let what = self.client().what(format_args!("HEAD of {}", self::location(&container, &object)));
        let response = self.shared.block_on(self.head(&what, &container, &object))?;
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::backend(format!("{what} gave no Content-Length")))
    }

    fn delete(&self, location: &str) -> Result<()> {
        let (container, object) = parse_location(self.client(), location)?;
        let client = self.client();
        let shared = &self.shared;
        let loc = self::location(&container, &object);
        shared.block_on(async {
            let what = client.what(format_args!("DELETE of {loc}"));
            let head = self.head(&what, &container, &object).await?;
            if head.headers().contains_key("x-static-large-object") {
                // The manifest and every segment it lists, in one request.
                let req = Req::new(Method::DELETE, Target::Object(&container, &object))
                    .query("multipart-manifest", "delete")
                    .header(header::ACCEPT, "application/json");
                let response = client.send(&what, &req).await?;
                let status = response.status();
                let text = client.text(&what, response).await?;
                let report: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|_| from_status(&what, status, &text))?;
                let deleted = report.get("Number Deleted").and_then(|n| n.as_u64()).unwrap_or(0);
                if deleted == 0 && report.get("Number Not Found").and_then(|n| n.as_u64()).unwrap_or(0) > 0 {
                    return Err(Error::not_found(format!("{what}: no such object")));
                }
                bulk_result(&what, &report)?;
            } else {
                let response = client.send(&what, &Req::new(Method::DELETE, Target::Object(&container, &object))).await?;
                match response.status() {
                    s if s.is_success() => {}
                    StatusCode::NOT_FOUND => return Err(Error::not_found(format!("{what}: no such object"))),
                    s => return Err(from_status(&what, s, "")),
                }
            }
            // Segments an interrupted upload of this image may have left: the image is gone,
            // so nothing under its id in the segments container is wanted any more.
            let segments = format!("{container}_segments");
            let left = shared.list(&segments, &format!("{object}/")).await?;
            if !left.is_empty() {
                tracing::info!(store = %client.store, image = %object, count = left.len(), "deleting leftover segments");
                shared.delete_objects(&segments, &left).await?;
            }
            Ok(())
        })
    }

    fn discard(&self, image_id: &str) -> Result<()> {
        let shared = &self.shared;
        let container = shared.config.container.clone();
        let segments = shared.config.segments_container();
        shared.block_on(async {
            let found = shared.list(&segments, &format!("{image_id}/")).await?;
            if found.is_empty() {
                return Ok(());
            }
            // A finished image's segments stay: its manifest lists them.
            let keep: HashSet<String> = shared.manifest_segments(&container, image_id).await?.into_iter().collect();
            let partial: Vec<String> =
                found.into_iter().filter(|name| !keep.contains(&format!("{segments}/{name}"))).collect();
            tracing::info!(store = %shared.client.store, image = image_id, count = partial.len(), "deleting the segments of an interrupted upload");
            shared.delete_objects(&segments, &partial).await
        })
    }

    fn check(&self) -> Result<()> {
        let shared = &self.shared;
        let client = &shared.client;
        let limit = CHECK_TIMEOUT.min(shared.config.timeout());
        let container = shared.config.container.as_str();
        shared.block_on(async {
            let session = client.authenticate_now(limit).await?;
            let what = client.what(format_args!("HEAD of container {container} at {}", server(&session.storage)));
            let request = client.build(&session, Method::HEAD, Target::Container(container));
            let response = client
                .bounded_by(limit, &what, async { request.send().await.map_err(|e| from_reqwest(&what, e)) })
                .await?;
            match response.status() {
                s if s.is_success() => Ok(()),
                StatusCode::NOT_FOUND if shared.config.create_container_on_put => Ok(()),
                StatusCode::NOT_FOUND => Err(missing_container(client, container)),
                s => Err(from_status(&what, s, "")),
            }
        })
    }
}

/// One GET's body, handed over as Swift sends it.
struct ChaseReader {
    response: Response,
    pending: Bytes,
    /// Bytes to drop before the requested offset (an answer that ignored the range).
    skip: u64,
    /// Bytes still to hand over, when a length was asked for.
    left: Option<u64>,
    shared: Arc<Shared>,
    what: String,
}

impl ChaseReader {
    /// The next piece of the body; `None` at its end. A body cut short of its
    /// Content-Length (a segment missing behind a manifest, a proxy gone) is an error,
    /// never a quiet end.
    async fn next(response: &mut Response, client: &Client, what: &str) -> Result<Option<Bytes>> {
        client.bounded(what, async { response.chunk().await.map_err(|e| from_reqwest(what, e)) }).await
    }
}

/// `f`'s output if it is ready at once; `None` (and `f` dropped) if it would wait.
async fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        Poll::Ready(match f.as_mut().poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

impl Reader for ChaseReader {
    /// Waits for the body's next piece, then adds every piece that has already arrived, as
    /// far as `buf` goes: Swift sends pieces of 64 KiB and less, and the host moves what one
    /// read returns as one chunk, so a read per piece would make many small chunks, while
    /// waiting to fill `buf` would hold back bytes that could already be on their way.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let ChaseReader { response, pending, skip, left, shared, what } = self;
        let client = &shared.client;
        shared.runtime.block_on(async {
            let mut filled = 0;
            loop {
                let room = match *left {
                    Some(l) => (buf.len() - filled).min(usize::try_from(l).unwrap_or(usize::MAX)),
                    None => buf.len() - filled,
                };
                if room == 0 {
                    return Ok(filled);
                }
                if pending.is_empty() {
                    let next = if filled == 0 {
                        Self::next(response, client, what).await?
                    } else {
                        // Dropping a `chunk` future that is still waiting loses nothing:
                        // the body keeps what has not been taken.
                        match ready_now(response.chunk()).await {
                            Some(r) => r.map_err(|e| from_reqwest(what, e))?,
                            None => return Ok(filled),
                        }
                    };
                    match next {
                        Some(chunk) => *pending = chunk,
                        None => return Ok(filled),
                    }
                }
                if *skip > 0 {
                    let n = (*skip).min(pending.len() as u64) as usize;
                    let _ = pending.split_to(n);
                    *skip -= n as u64;
                    continue;
                }
                let n = room.min(pending.len());
                buf[filled..filled + n].copy_from_slice(&pending.split_to(n));
                filled += n;
                if let Some(l) = left {
                    *l -= n as u64;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> (tokio::runtime::Runtime, Client) {
        let config = Config::from_json(serde_json::json!({
            "auth_address": "http://127.0.0.1:1/auth/v1.0", "user": "a:b", "key": "k"}))
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = {
            let _inside = rt.enter();
            Client::new("chase", Arc::new(config)).unwrap()
        };
        (rt, client)
    }

    #[test]
    fn locations_name_container_and_object_and_never_echo_credentials() {
        let (_rt, c) = client();
        assert_eq!(parse_location(&c, "swift://tank/abc").unwrap(), ("tank".into(), "abc".into()));
        assert_eq!(parse_location(&c, "chase://tank/abc").unwrap(), ("tank".into(), "abc".into()));
        assert_eq!(location("tank", "abc"), "swift://tank/abc");
        let e = parse_location(&c, "swift://user:s3cret@auth.example/v1/tank/abc").unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
        assert!(!e.message.contains("s3cret") && e.message.contains("store 'chase'"), "{}", e.message);
        for bad in ["swift://tank", "swift:///abc", "file:///etc/passwd", "swift://tank/a?b"] {
            assert_eq!(parse_location(&c, bad).unwrap_err().kind, ErrorKind::INVALID_INPUT, "{bad}");
        }
    }

    #[test]
    fn bulk_delete_lines_are_encoded_paths() {
        assert_eq!(object_path("tank_segments", "id/n/00000001"), "/tank_segments/id/n/00000001");
        assert_eq!(object_path("my tank", "a b"), "/my%20tank/a%20b");
    }

    #[test]
    fn bulk_reports_with_errors_fail() {
        let ok = serde_json::json!({"Response Status": "200 OK", "Number Deleted": 3, "Errors": []});
        assert!(bulk_result("x", &ok).is_ok());
        let bad = serde_json::json!({"Response Status": "400 Bad Request", "Number Deleted": 0,
            "Errors": [["/c/o", "Not an SLO manifest"]]});
        assert!(bulk_result("x", &bad).unwrap_err().message.contains("Not an SLO manifest"));
    }

    #[test]
    fn a_dead_server_is_unavailable_at_once_and_named() {
        let store = ChaseStore::open(&OpenContext {
            name: "chase".into(),
            config: serde_json::json!({"auth_address": "http://127.0.0.1:1/auth/v1.0", "user": "a:b", "key": "k"}),
            config_dir: "/".into(),
        })
        .unwrap();
        let e = store.check().unwrap_err();
        assert_eq!(e.kind, ErrorKind::UNAVAILABLE);
        assert!(e.message.starts_with("store 'chase': auth v1.0 at 127.0.0.1:1 failed"), "{}", e.message);
        assert_eq!(store.add("id", None).err().map(|e| e.kind), Some(ErrorKind::UNAVAILABLE));
    }
}
