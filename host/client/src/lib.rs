//! A client for Tank's Images API, v2 (docs/api-v2.md) by default and v1 (docs/api-v1.md)
//! on request ([`Client::with_api`]): what the seed era's Python `glance.client.Client`
//! did, in Rust, with the same calls over either version. The `tank image` and `tank
//! member` commands are built on it, and so are the end-to-end tests.
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
mod v1;
mod v2;

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

use crate::body::RequestBody;
use crate::image::encode;
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

/// Which version of the Images API a [`Client`] speaks. Every call means the same in
/// both; where one version cannot do what a call asks, the call fails with
/// [`ErrorKind::BadInput`] and says to use the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Api {
    /// The seed era's API (`/v1`): metadata in `x-image-meta-*` headers.
    V1,
    /// The API today's OpenStack clients speak (`/v2`): JSON documents and patches.
    #[default]
    V2,
}

impl Api {
    /// `"v1"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::V1 => "v1",
            Api::V2 => "v2",
        }
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Api {
    type Err = Error;

    fn from_str(s: &str) -> Result<Api> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" => Ok(Api::V1),
            "v2" | "2" => Ok(Api::V2),
            _ => Err(Error::new(ErrorKind::BadInput, format!("unknown API version {s:?}: use v1 or v2"))),
        }
    }
}

/// A connection to one Tank API server. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<HeaderValue>,
    api: Api,
    http: HttpClient<HttpConnector, RequestBody>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("api", &self.api)
            .field("token", &self.token.is_some())
            .finish()
    }
}

impl Client {
    /// A client of the v2 API for the server at `url`: `http://host:port`, with or without
    /// a trailing `/v1` or `/v2` (Glance's `--url` took it either way; the version spoken
    /// is [`with_api`](Client::with_api)'s, not the URL's).
    ///
    /// # Errors
    /// [`ErrorKind::BadInput`] for a URL that is not `http://host[:port][/v1|/v2]`. TLS is
    /// not built in: put a TLS-terminating proxy in front and talk to it over http.
    ///
    /// ```
    /// let c = tank_client::Client::new("http://images.example.com:9292/v1/").unwrap();
    /// assert_eq!(c.url(), "http://images.example.com:9292");
    /// assert_eq!(c.api(), tank_client::Api::V2);
    /// assert_eq!(tank_client::Client::new("ftp://x").unwrap_err().kind(), tank_client::ErrorKind::BadInput);
    /// ```
    pub fn new(url: &str) -> Result<Client> {
        let bad = |why: &str| Error::new(ErrorKind::BadInput, format!("cannot use server URL {url:?}: {why}"));
        let trimmed = url.trim().trim_end_matches('/');
        let trimmed = ["/v1.0", "/v1", "/v2.0", "/v2"].iter().find_map(|v| trimmed.strip_suffix(v)).unwrap_or(trimmed);
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
            return Err(bad("only http://host:port, optionally followed by /v1 or /v2, is understood"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new()).build(connector);
        Ok(Client { base: trimmed.to_owned(), token: None, api: Api::default(), http })
    }

    /// Speaks `api` from now on.
    pub fn with_api(mut self, api: Api) -> Client {
        self.api = api;
        self
    }

    /// The API version this client speaks.
    pub fn api(&self) -> Api {
        self.api
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

    /// The server's URL, without a version.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Where image `id` lives in the API this client speaks (`.../v2/images/<id>`).
    pub fn image_url(&self, id: &str) -> String {
        format!("{}/{}/images/{}", self.base, self.api, encode(id))
    }

    /// One page of the brief list: id, name, formats, checksum, size (`GET /v1/images`;
    /// v2 has one list, `GET /v2/images`, read down to these fields).
    ///
    /// The query's filters are v1's names (`is_public`, `changes-since`,
    /// `property-<key>`, ...); over v2 they become v2's (`visibility`, `updated_at=gte:`,
    /// `<key>`), and a filter v2 lacks (`min_ram`, `min_disk`) is [`ErrorKind::BadInput`].
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<ImageSummary>> {
        match self.api {
            Api::V1 => self.v1_list(query).await,
            Api::V2 => Ok(self.v2_list(query).await?.into_iter().map(ImageSummary::from).collect()),
        }
    }

    /// One page of the detailed list (`GET /v1/images/detail`, `GET /v2/images`).
    pub async fn list_detailed(&self, query: &ListQuery) -> Result<Vec<Image>> {
        match self.api {
            Api::V1 => self.v1_list_detailed(query).await,
            Api::V2 => self.v2_list(query).await,
        }
    }

    /// An image's metadata (`HEAD /v1/images/<id>`, `GET /v2/images/<id>`).
    pub async fn get(&self, id: &str) -> Result<Image> {
        match self.api {
            Api::V1 => self.v1_get(id).await,
            Api::V2 => self.v2_get(id).await,
        }
    }

    /// Creates an image: with `data` it is uploaded and the answer comes once the data is
    /// stored and checked; without, the image is registered from `meta.location` (v1
    /// only), copied from `meta.copy_from` (v2: a `web-download` import, waited for), or
    /// reserved `queued`.
    ///
    /// v1 sends one `POST /v1/images`; v2 creates the image (`POST /v2/images`), then
    /// uploads (`PUT .../file`, with the `size` and `checksum` fields as
    /// `x-openstack-image-size` and `Content-MD5`, and `store` as `x-image-meta-store`).
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
        match self.api {
            Api::V1 => self.v1_write(Method::POST, "/v1/images".into(), meta, data).await,
            Api::V2 => self.v2_create(meta, data).await,
        }
    }

    /// Changes an image's metadata, and uploads `data` to a `queued` one. Properties not
    /// in `meta` are kept unless `meta.purge_properties` (`PUT /v1/images/<id>`; over v2 a
    /// JSON patch, then the upload).
    pub async fn update(&self, id: &str, meta: &ImageMeta, data: Option<Upload>) -> Result<Image> {
        match self.api {
            Api::V1 => self.v1_write(Method::PUT, format!("/v1/images/{}", encode(id)), meta, data).await,
            Api::V2 => self.v2_update(id, meta, data).await,
        }
    }

    /// Deletes an image (`DELETE /v1/images/<id>`, `DELETE /v2/images/<id>`).
    pub async fn delete(&self, id: &str) -> Result<()> {
        let path = format!("/{}/images/{}", self.api, encode(id));
        self.send(Method::DELETE, &path, HeaderMap::new(), RequestBody::Empty, None).await?;
        Ok(())
    }

    /// Starts downloading an image's data (`GET /v1/images/<id>`, `GET
    /// /v2/images/<id>/file`); only `active` images have data. Read it from the returned
    /// [`Download`].
    pub async fn download(&self, id: &str) -> Result<Download> {
        match self.api {
            Api::V1 => self.v1_download(id).await,
            Api::V2 => self.v2_download(id).await,
        }
    }

    /// The tenants image `id` is shared with (over v2, with their status).
    pub async fn members(&self, id: &str) -> Result<Vec<Member>> {
        match self.api {
            Api::V1 => self.v1_members(id).await,
            Api::V2 => self.v2_members(id).await,
        }
    }

    /// The images shared with tenant `member`: v1 asks `GET /v1/shared-images/<member>`;
    /// v2 has no such call, so the client lists the shared images this caller sees and
    /// asks each whether `member` is one of its members (a request per shared image).
    pub async fn shared_images(&self, member: &str) -> Result<Vec<SharedImage>> {
        match self.api {
            Api::V1 => self.v1_shared_images(member).await,
            Api::V2 => self.v2_shared_images(member).await,
        }
    }

    /// Shares image `id` with tenant `member`; an existing member stays one. `can_share:
    /// None` adds a new member without the right to share and leaves an existing one as
    /// it is. v2 has no right to share: there, `Some(true)` is [`ErrorKind::BadInput`],
    /// and the image must be `shared` (v2's default for new images).
    pub async fn add_member(&self, id: &str, member: &str, can_share: Option<bool>) -> Result<()> {
        match self.api {
            Api::V1 => self.v1_add_member(id, member, can_share).await,
            Api::V2 => self.v2_add_member(id, member, can_share).await,
        }
    }

    /// Stops sharing image `id` with tenant `member`.
    pub async fn delete_member(&self, id: &str, member: &str) -> Result<()> {
        let path = format!("/{}/images/{}/members/{}", self.api, encode(id), encode(member));
        self.send(Method::DELETE, &path, HeaderMap::new(), RequestBody::Empty, None).await?;
        Ok(())
    }

    /// Makes `members` the image's whole member list: others are removed (v1 in one
    /// request; v2 member by member).
    pub async fn replace_members(&self, id: &str, members: &[MemberChange]) -> Result<()> {
        match self.api {
            Api::V1 => self.v1_replace_members(id, members).await,
            Api::V2 => self.v2_replace_members(id, members).await,
        }
    }

    /// Sets tenant `member`'s answer to the offer of image `id` (v2 only: `accepted`,
    /// `rejected` or `pending`); only that member may. An accepted image appears in the
    /// member's lists.
    pub async fn set_member_status(&self, id: &str, member: &str, status: &str) -> Result<Member> {
        match self.api {
            Api::V1 => Err(Error::new(
                ErrorKind::BadInput,
                "a member's status (accepted, rejected) exists in the v2 API only; use v2",
            )),
            Api::V2 => self.v2_set_member_status(id, member, status).await,
        }
    }

    pub(crate) async fn json<T: DeserializeOwned>(&self, method: Method, path: &str) -> Result<T> {
        read_json(self.send(method, path, HeaderMap::new(), RequestBody::Empty, None).await?).await
    }

    /// Sends a request for `path` (`/v1/...`, `/v2/...`) and turns a non-success answer
    /// into an [`Error`].
    /// `failure` is where a streamed body leaves a local read error, which then wins over
    /// the network error it caused.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: RequestBody,
        failure: Option<Arc<Mutex<Option<Error>>>>,
    ) -> Result<Response<Incoming>> {
        let uri = format!("{}{path}", self.base);
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
