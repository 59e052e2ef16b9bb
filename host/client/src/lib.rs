//! A client for Tank's Images API v1 (docs/api-v1.md): what the seed era's Python
//! `glance.client.Client` did, in Rust. The `tank image` and `tank member` commands are
//! built on it, and so are the end-to-end tests.
//!
//! - Every call is `async` (tokio) and returns [`Result`]; an [`Error`] has a
//!   [`kind`](Error::kind) to match on: not found, bad input, conflict, forbidden, server,
//!   network, integrity, io.
//! - Uploads stream from any [`AsyncRead`](tokio::io::AsyncRead) ([`Upload`]): with
//!   `Content-Length` when the size is known, chunked when it is not.
//! - Downloads stream ([`Download`]) and check the data's size and MD5 against the image's
//!   `size` and `checksum` as it arrives. No call holds a whole image in memory.
//!
//! ```no_run
//! use tank_client::{Client, ErrorKind, ImageMeta, ListQuery, Upload};
//!
//! # async fn example() -> tank_client::Result<()> {
//! let client = Client::new("http://127.0.0.1:9292")?;
//!
//! // Upload a file as a new image.
//! let meta = ImageMeta::new().name("cirros").disk_format("qcow2").container_format("bare");
//! let image = client.create(&meta, Some(Upload::file("cirros.img").await?)).await?;
//! println!("{} is {} with checksum {:?}", image.id, image.status, image.checksum);
//!
//! // List the qcow2 images, 10 at a time.
//! for summary in client.list(&ListQuery::new().filter("disk_format", "qcow2").limit(10)).await? {
//!     println!("{} {:?}", summary.id, summary.name);
//! }
//!
//! // Download it into a file; the file appears only if the checksum matched.
//! client.download(&image.id).await?.save("copy.img", |_| {}).await?;
//!
//! // Errors have kinds.
//! match client.get("no-such-image").await {
//!     Err(e) if e.kind() == ErrorKind::NotFound => println!("gone"),
//!     other => println!("{other:?}"),
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

// The README's example is compiled too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

mod body;
mod download;
mod error;
mod image;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client as HttpClient},
    rt::TokioExecutor,
};
use serde::de::DeserializeOwned;

use crate::{
    body::{DataBody, RequestBody},
    image::encode,
};
pub use crate::{
    body::{Progress, Upload},
    download::Download,
    error::{Error, ErrorKind, Result},
    image::{Image, ImageMeta, ImageSummary, ListQuery, Member, MemberChange, SharedImage, FIELDS},
};

/// The port Glance and Tank serve the Images API on.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9292";

/// How long a connection attempt may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an error answer's body that is read: enough for any message, and a bound
/// against a server that answers an error with a stream.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// A connection to one Tank API server. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<HeaderValue>,
    http: HttpClient<HttpConnector, RequestBody>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("Client").field("base", &self.base).field("token", &self.token.is_some()).finish()
    }
}

impl Client {
    /// A client for the server at `url`: `http://host:port`, with or without a trailing
    /// `/v1` (Glance's `--url` took it either way).
    ///
    /// # Errors
    /// [`ErrorKind::BadInput`] for a URL that is not `http://host[:port][/v1]`. TLS is not
    /// built in: put a TLS-terminating proxy in front and talk to it over http.
    ///
    /// ```
    /// let c = tank_client::Client::new("http://images.example.com:9292/v1/").unwrap();
    /// assert_eq!(c.url(), "http://images.example.com:9292");
    /// assert_eq!(tank_client::Client::new("ftp://x").unwrap_err().kind(), tank_client::ErrorKind::BadInput);
    /// ```
    pub fn new(url: &str) -> Result<Client> {
        let bad = |why: &str| Error::new(ErrorKind::BadInput, format!("cannot use server URL {url:?}: {why}"));
        let trimmed = url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/v1.0").or_else(|| trimmed.strip_suffix("/v1")).unwrap_or(trimmed);
        let uri: http::Uri = trimmed.parse().map_err(|_| bad("it is not a URL (expected http://host:port)"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not built in; use http, or a local TLS proxy")),
            _ => return Err(bad("it must start with http://")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("it names no host"));
        }
        if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
            return Err(bad("only http://host:port, optionally followed by /v1, is understood"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new()).build(connector);
        Ok(Client { base: trimmed.to_owned(), token: None, http })
    }

    /// Sends `token` as `X-Auth-Token` with every request.
    ///
    /// # Errors
    /// [`ErrorKind::BadInput`] if the token is not printable ASCII.
    pub fn with_token(mut self, token: &str) -> Result<Client> {
        let mut value = HeaderValue::from_str(token)
            .map_err(|_| Error::new(ErrorKind::BadInput, "the token must be printable ASCII"))?;
        value.set_sensitive(true);
        self.token = Some(value);
        Ok(self)
    }

    /// The server's URL, without `/v1`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// One page of the brief list (`GET /v1/images`): id, name, formats, checksum, size.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<ImageSummary>> {
        #[derive(serde::Deserialize)]
        struct Page {
            images: Vec<ImageSummary>,
        }
        let path = with_query("/images", query);
        Ok(self.json::<Page>(Method::GET, &path).await?.images)
    }

    /// One page of the detailed list (`GET /v1/images/detail`).
    pub async fn list_detailed(&self, query: &ListQuery) -> Result<Vec<Image>> {
        #[derive(serde::Deserialize)]
        struct Page {
            images: Vec<Image>,
        }
        let path = with_query("/images/detail", query);
        Ok(self.json::<Page>(Method::GET, &path).await?.images)
    }

    /// An image's metadata (`HEAD /v1/images/<id>`).
    pub async fn get(&self, id: &str) -> Result<Image> {
        let path = format!("/images/{}", encode(id));
        let resp = self.send(Method::HEAD, &path, HeaderMap::new(), RequestBody::Empty, None).await.map_err(|e| {
            // An answer to HEAD has no body, so no message: say what was not found.
            match e.status() {
                Some(404) => Error::from_answer(404, format!("image {id} not found")),
                _ => e,
            }
        })?;
        Image::from_headers(resp.headers())
    }

    /// Creates an image (`POST /v1/images`): with `data` it is uploaded and the answer
    /// comes once the data is stored and checked; without, the image is registered from
    /// `meta.location`, copied from `meta.copy_from`, or reserved `queued`.
    ///
    /// ```no_run
    /// # async fn f(client: tank_client::Client) -> tank_client::Result<()> {
    /// use tank_client::{ImageMeta, Upload};
    /// let data = Upload::reader(tokio::io::stdin(), None).on_progress(|n| eprint!("\r{n} bytes"));
    /// let image = client.create(&ImageMeta::new().name("from-stdin"), Some(data)).await?;
    /// assert_eq!(image.status, "active");
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, meta: &ImageMeta, data: Option<Upload>) -> Result<Image> {
        self.write_image(Method::POST, "/images".into(), meta, data).await
    }

    /// Changes an image's metadata (`PUT /v1/images/<id>`), and uploads `data` to a
    /// `queued` one. Properties not in `meta` are kept unless `meta.purge_properties`.
    pub async fn update(&self, id: &str, meta: &ImageMeta, data: Option<Upload>) -> Result<Image> {
        self.write_image(Method::PUT, format!("/images/{}", encode(id)), meta, data).await
    }

    async fn write_image(&self, method: Method, path: String, meta: &ImageMeta, data: Option<Upload>) -> Result<Image> {
        #[derive(serde::Deserialize)]
        struct Answer {
            image: Image,
        }
        let mut headers = HeaderMap::new();
        meta.headers(&mut headers)?;
        if method == Method::PUT {
            let purge = if meta.purge_properties { "true" } else { "false" };
            headers.insert("x-glance-registry-purge-props", HeaderValue::from_static(purge));
        }
        let (body, failure) = match data {
            Some(upload) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                if let Some(size) = upload.size().filter(|&s| s > 0) {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
                }
                let (body, failure) = DataBody::new(upload);
                (RequestBody::Data(body), Some(failure))
            }
            None => (RequestBody::Empty, None),
        };
        let resp = self.send(method, &path, headers, body, failure).await?;
        Ok(read_json::<Answer>(resp).await?.image)
    }

    /// Deletes an image (`DELETE /v1/images/<id>`).
    pub async fn delete(&self, id: &str) -> Result<()> {
        let path = format!("/images/{}", encode(id));
        self.send(Method::DELETE, &path, HeaderMap::new(), RequestBody::Empty, None).await?;
        Ok(())
    }

    /// Starts downloading an image's data (`GET /v1/images/<id>`); only `active` images
    /// have data. Read it from the returned [`Download`].
    pub async fn download(&self, id: &str) -> Result<Download> {
        let path = format!("/images/{}", encode(id));
        let resp = self.send(Method::GET, &path, HeaderMap::new(), RequestBody::Empty, None).await?;
        let image = Image::from_headers(resp.headers())?;
        Ok(Download::new(image, resp.into_body()))
    }

    /// The tenants image `id` is shared with.
    pub async fn members(&self, id: &str) -> Result<Vec<Member>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            members: Vec<Member>,
        }
        Ok(self.json::<Answer>(Method::GET, &format!("/images/{}/members", encode(id))).await?.members)
    }

    /// The images shared with tenant `member`.
    pub async fn shared_images(&self, member: &str) -> Result<Vec<SharedImage>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            shared_images: Vec<SharedImage>,
        }
        Ok(self.json::<Answer>(Method::GET, &format!("/shared-images/{}", encode(member))).await?.shared_images)
    }

    /// Shares image `id` with tenant `member`. `can_share: None` adds a new member without
    /// the right to share and leaves an existing one as it is.
    pub async fn add_member(&self, id: &str, member: &str, can_share: Option<bool>) -> Result<()> {
        let path = format!("/images/{}/members/{}", encode(id), encode(member));
        let body = match can_share {
            Some(c) => json_body(&serde_json::json!({"member": {"can_share": c}})),
            None => RequestBody::Empty,
        };
        self.send(Method::PUT, &path, json_headers(), body, None).await?;
        Ok(())
    }

    /// Stops sharing image `id` with tenant `member`.
    pub async fn delete_member(&self, id: &str, member: &str) -> Result<()> {
        let path = format!("/images/{}/members/{}", encode(id), encode(member));
        self.send(Method::DELETE, &path, HeaderMap::new(), RequestBody::Empty, None).await?;
        Ok(())
    }

    /// Makes `members` the image's whole member list: others are removed.
    pub async fn replace_members(&self, id: &str, members: &[MemberChange]) -> Result<()> {
        let path = format!("/images/{}/members", encode(id));
        let body = json_body(&serde_json::json!({ "memberships": members }));
        self.send(Method::PUT, &path, json_headers(), body, None).await?;
        Ok(())
    }

    async fn json<T: DeserializeOwned>(&self, method: Method, path: &str) -> Result<T> {
        read_json(self.send(method, path, HeaderMap::new(), RequestBody::Empty, None).await?).await
    }

    /// Sends a request under `/v1` and turns a non-success answer into an [`Error`].
    /// `failure` is where a streamed body leaves a local read error, which then wins over
    /// the network error it caused.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: RequestBody,
        failure: Option<Arc<Mutex<Option<Error>>>>,
    ) -> Result<Response<Incoming>> {
        let uri = format!("{}/v1{path}", self.base);
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .body(body)
            .map_err(|e| Error::new(ErrorKind::BadInput, format!("cannot build a request for {uri}: {e}")))?;
        *req.headers_mut() = headers;
        if let Some(token) = &self.token {
            req.headers_mut().insert("x-auth-token", token.clone());
        }
        let resp = match self.http.request(req).await {
            Ok(resp) => resp,
            Err(e) => {
                if let Some(local) = failure.and_then(|f| f.lock().unwrap_or_else(|p| p.into_inner()).take()) {
                    return Err(local);
                }
                let message = format!("cannot reach the server at {}: {}", self.base, chain(&e));
                return Err(Error::new(ErrorKind::Network, message).with_source(e));
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        Err(Error::from_answer(status.as_u16(), error_message(status, resp.into_body()).await))
    }
}

/// `path?query`, or `path` for an empty query.
fn with_query(path: &str, query: &ListQuery) -> String {
    match query.query_string() {
        q if q.is_empty() => path.to_owned(),
        q => format!("{path}?{q}"),
    }
}

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

fn json_body(value: &serde_json::Value) -> RequestBody {
    RequestBody::Full(Some(Bytes::from(value.to_string())))
}

/// Reads a whole JSON answer.
async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let body = resp.into_body().collect().await.map_err(|e| {
        Error::new(ErrorKind::Network, format!("the connection broke while reading the answer: {e}")).with_source(e)
    })?;
    serde_json::from_slice(&body.to_bytes()).map_err(|e| {
        Error::new(ErrorKind::Server, format!("the server's answer is not the JSON this client expects: {e}"))
            .with_source(e)
    })
}

/// The message of an error answer: the API's `{"error": {"message"}}`, else the body's
/// text, else the status's name.
async fn error_message(status: StatusCode, mut body: Incoming) -> String {
    let mut text = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            text.extend_from_slice(&data);
            if text.len() > ERROR_BODY_MAX {
                break;
            }
        }
    }
    let from_json = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
    let message = from_json.unwrap_or_else(|| String::from_utf8_lossy(&text).trim().to_owned());
    if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_ascii_lowercase()
    } else {
        message
    }
}

/// An error and its causes on one line: hyper's errors say little at the top level
/// ("client error (Connect)") and the useful part ("Connection refused") is a cause.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let (mut text, mut source) = match e.source() {
        Some(cause) => (cause.to_string(), cause.source()),
        None => (e.to_string(), None),
    };
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
