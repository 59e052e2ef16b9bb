//! A small Swift client on reqwest: authentication (auth v1.0 or Keystone v3) giving a
//! storage URL and a token, requests against that URL with the token, and one fresh
//! authentication plus one retry when Swift answers 401 (the token expired or was revoked).
//!
//! Every wait is bounded by the store's `timeout`: reqwest's own `read_timeout` counts from
//! the start of a request, which would cut a long upload, so the client sets only a connect
//! timeout and bounds each step (an answer, a piece of body, room in an upload's queue)
//! itself.

use std::{
    fmt,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use reqwest::{
    header::{HeaderName, HeaderValue},
    Method, Response, StatusCode,
};
use serde_json::json;
use tank_sdk::{Error, ErrorKind, Result};
use url::Url;

use crate::{
    config::{AuthVersion, Config},
    error::{from_reqwest, from_status, timed_out},
};

/// What one authentication gave: where the account lives and the token to show it.
pub struct Session {
    /// The account's storage URL (`http://proxy:8080/v1/AUTH_test`).
    pub storage: Url,
    token: HeaderValue,
    /// Counts authentications, so that requests that all saw one token refused renew it
    /// once between them.
    generation: u64,
}

// The token stays out of every log line.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("storage", &server(&self.storage))
            .field("generation", &self.generation)
            .finish()
    }
}

/// Where a request goes, under the storage URL.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The account itself (bulk delete).
    Account,
    /// A container.
    Container(&'a str),
    /// An object: container and name (which may hold `/`).
    Object(&'a str, &'a str),
}

/// One request whose body, if any, can be sent again.
pub struct Req<'a> {
    /// GET, PUT, ...
    pub method: Method,
    /// What it addresses.
    pub target: Target<'a>,
    /// Query parameters (`multipart-manifest=put`, `prefix=...`).
    pub query: Vec<(&'a str, String)>,
    /// Headers besides the token.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body, complete.
    pub body: Option<Bytes>,
}

impl<'a> Req<'a> {
    /// A request of `method` to `target`, without query, headers or body.
    pub fn new(method: Method, target: Target<'a>) -> Req<'a> {
        Req { method, target, query: Vec::new(), headers: Vec::new(), body: None }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'a str, value: impl Into<String>) -> Req<'a> {
        self.query.push((name, value.into()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: &'static str) -> Req<'a> {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Req<'a> {
        self.body = Some(body.into());
        self
    }
}

/// `host:port` of `url`: all a message may say about a Swift URL.
pub fn server(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Talks to one Swift account for one store.
pub struct Client {
    http: reqwest::Client,
    config: Arc<Config>,
    /// The store's name, which starts every message.
    pub store: String,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    generation: AtomicU64,
}

impl Client {
    /// A client for `config`. Must be called inside the store's runtime.
    pub fn new(store: &str, config: Arc<Config>) -> Result<Client> {
        let http = reqwest::Client::builder()
            // An operator's http_proxy is for the outside world, not for the object store.
            .no_proxy()
            .connect_timeout(config.timeout())
            .tcp_nodelay(true)
            .user_agent(concat!("tank-chase-store/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::invalid_config(format!("store '{store}': cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            config,
            store: store.to_owned(),
            session: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
        })
    }

    /// "store '<name>': `action`", the start of every message.
    pub fn what(&self, action: impl fmt::Display) -> String {
        format!("store '{}': {action}", self.store)
    }

    /// The store's `timeout`.
    pub fn timeout(&self) -> Duration {
        self.config.timeout()
    }

    /// Waits for `f` at most the store's `timeout`; `what` names it in the error.
    pub async fn bounded<T>(&self, what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        self.bounded_by(self.timeout(), what, f).await
    }

    /// Waits for `f` at most `limit`.
    pub async fn bounded_by<T>(&self, limit: Duration, what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(limit, f).await {
            Ok(r) => r,
            Err(_) => Err(timed_out(what, limit.as_secs())),
        }
    }

    /// The current session, authenticating first if there is none.
    pub async fn session(&self) -> Result<Arc<Session>> {
        let mut current = self.session.lock().await;
        if let Some(s) = &*current {
            return Ok(s.clone());
        }
        let fresh = Arc::new(self.authenticate(self.timeout()).await?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// A session newer than `stale`, whose token Swift refused: authenticates again, unless
    /// another request already did since.
    pub async fn renew(&self, stale: &Session) -> Result<Arc<Session>> {
        let mut current = self.session.lock().await;
        if let Some(s) = &*current {
            if s.generation != stale.generation {
                return Ok(s.clone());
            }
        }
        tracing::info!(store = %self.store, "Swift refused the token (401); authenticating again");
        let fresh = Arc::new(self.authenticate(self.timeout()).await?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Authenticates now, within `limit`, and keeps the session (`tank plugins --verify`).
    pub async fn authenticate_now(&self, limit: Duration) -> Result<Arc<Session>> {
        let mut current = self.session.lock().await;
        let fresh = Arc::new(self.authenticate(limit).await?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    async fn authenticate(&self, limit: Duration) -> Result<Session> {
        let (storage, token) = match self.config.auth_version {
            AuthVersion::V1 => self.auth_v1(limit).await?,
            AuthVersion::V3 => self.auth_v3(limit).await?,
        };
        let storage = Url::parse(&storage)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::backend(self.what("authentication gave a storage URL that is not http(s)")))?;
        let mut token = HeaderValue::from_str(&token)
            .map_err(|_| Error::backend(self.what("authentication gave a token that is not a valid header")))?;
        token.set_sensitive(true);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(store = %self.store, storage = %server(&storage), generation, "authenticated");
        Ok(Session { storage, token, generation })
    }

    fn auth_url(&self) -> Result<Url> {
        Url::parse(&self.config.auth_address)
            .map_err(|e| Error::invalid_config(self.what(format!("auth_address is not a URL: {e}"))))
    }

    /// Auth v1.0: a GET with the user and key in headers; the answer's headers hold the
    /// storage URL and the token.
    async fn auth_v1(&self, limit: Duration) -> Result<(String, String)> {
        let url = self.auth_url()?;
        let what = self.what(format!("auth v1.0 at {}", server(&url)));
        let mut key = HeaderValue::from_str(&self.config.key)
            .map_err(|_| Error::invalid_config(self.what("key holds characters a header cannot carry")))?;
        key.set_sensitive(true);
        let request = self.http.get(url).header("x-auth-user", &self.config.user).header("x-auth-key", key);
        let response =
            self.bounded_by(limit, &what, async { request.send().await.map_err(|e| from_reqwest(&what, e)) }).await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::new(
                ErrorKind::PERMISSION_DENIED,
                format!("{what} refused the configured user and key ({status}); check user and key"),
            ));
        }
        if !status.is_success() {
            return Err(from_status(&what, status, ""));
        }
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let storage = header("x-storage-url");
        let token = header("x-auth-token").or_else(|| header("x-storage-token"));
        match (storage, token) {
            (Some(s), Some(t)) => Ok((s, t)),
            _ => Err(Error::backend(format!("{what} answered without X-Storage-Url and X-Auth-Token"))),
        }
    }

    /// Keystone v3: a password authentication scoped to the project; the token is the
    /// `X-Subject-Token` header, the storage URL the catalog's public object-store endpoint.
    async fn auth_v3(&self, limit: Duration) -> Result<(String, String)> {
        let mut url = self.auth_url()?;
        if !url.path().trim_end_matches('/').ends_with("/auth/tokens") {
            url.path_segments_mut()
                .map_err(|()| Error::invalid_config(self.what("auth_address cannot take a path")))?
                .pop_if_empty()
                .extend(["auth", "tokens"]);
        }
        let what = self.what(format!("Keystone v3 authentication at {}", server(&url)));
        let c = &self.config;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.user, "domain": {"name": c.user_domain}, "password": c.key}}},
            "scope": {"project": {"name": c.project, "domain": {"name": c.project_domain}}},
        }});
        let request =
            self.http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(
                serde_json::to_vec(&body).map_err(|e| Error::backend(format!("{what}: encoding the request: {e}")))?,
            );
        let (status, token, text) = self
            .bounded_by(limit, &what, async {
                let response = request.send().await.map_err(|e| from_reqwest(&what, e))?;
                let token = response.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let status = response.status();
                let text = response.text().await.map_err(|e| from_reqwest(&what, e))?;
                Ok((status, token, text))
            })
            .await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::new(
                ErrorKind::PERMISSION_DENIED,
                format!("{what} refused the configured user, key and project ({status}); check them"),
            ));
        }
        if !status.is_success() {
            return Err(from_status(&what, status, &text));
        }
        let token = token.ok_or_else(|| Error::backend(format!("{what} answered without X-Subject-Token")))?;
        let body: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::backend(format!("{what} answered a body that is not JSON: {e}")))?;
        let storage = object_store_endpoint(&body).ok_or_else(|| {
            Error::invalid_config(format!(
                "{what}: the token's catalog has no public object-store endpoint; is the project's Swift registered?"
            ))
        })?;
        Ok((storage, token))
    }

    /// The URL of `target` in `session`'s account.
    pub fn url(&self, session: &Session, target: Target<'_>) -> Url {
        let mut url = session.storage.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            match target {
                Target::Account => {}
                Target::Container(c) => {
                    path.push(c);
                }
                Target::Object(c, o) => {
                    path.push(c).extend(o.split('/'));
                }
            }
        }
        url
    }

    /// A request builder for `target` with the session's token.
    pub fn build(&self, session: &Session, method: Method, target: Target<'_>) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(session, target)).header("x-auth-token", session.token.clone())
    }

    /// Sends `req` and waits for the answer's head. A 401 renews the session and sends it
    /// once more; the caller judges every other status.
    pub async fn send(&self, what: &str, req: &Req<'_>) -> Result<Response> {
        let session = self.session().await?;
        let response = self.send_once(what, &session, req).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let session = self.renew(&session).await?;
        let response = self.send_once(what, &session, req).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(from_status(&format!("{what} (with a fresh token)"), StatusCode::UNAUTHORIZED, ""));
        }
        Ok(response)
    }

    async fn send_once(&self, what: &str, session: &Session, req: &Req<'_>) -> Result<Response> {
        let mut url = self.url(session, req.target);
        if !req.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &req.query {
                if value.is_empty() {
                    // Swift's flags (`?bulk-delete`) carry no value.
                    pairs.append_key_only(name);
                } else {
                    pairs.append_pair(name, value);
                }
            }
        }
        let mut builder = self.http.request(req.method.clone(), url).header("x-auth-token", session.token.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        self.bounded(what, async { builder.send().await.map_err(|e| from_reqwest(what, e)) }).await
    }

    /// The whole body of `response`, as text.
    pub async fn text(&self, what: &str, response: Response) -> Result<String> {
        self.bounded(what, async { response.text().await.map_err(|e| from_reqwest(what, e)) }).await
    }

    /// Sends `req` and expects a success; anything else is an error, with Swift's
    /// explanation when it gave one.
    pub async fn expect_success(&self, what: &str, req: &Req<'_>) -> Result<Response> {
        let response = self.send(what, req).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = self.text(what, response).await.unwrap_or_default();
        Err(from_status(what, status, &text))
    }
}

/// The public object-store endpoint of a Keystone v3 token's catalog.
fn object_store_endpoint(token: &serde_json::Value) -> Option<String> {
    let catalog = token.get("token")?.get("catalog")?.as_array()?;
    catalog.iter().filter(|s| s.get("type").and_then(|t| t.as_str()) == Some("object-store")).find_map(|service| {
        service.get("endpoints")?.as_array()?.iter().find_map(|e| {
            (e.get("interface")?.as_str()? == "public").then(|| e.get("url")?.as_str().map(str::to_owned))?
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_url_is_the_catalogs_public_object_store_endpoint() {
        let token = json!({"token": {"expires_at": "2030-01-01T00:00:00Z", "catalog": [
            {"type": "identity", "endpoints": [{"interface": "public", "url": "http://ks:5000/v3"}]},
            {"type": "object-store", "endpoints": [
                {"interface": "internal", "url": "http://10.0.0.5:8080/v1/AUTH_p"},
                {"interface": "public", "region": "r1", "url": "https://swift.example:443/v1/AUTH_p"}]}]}});
        assert_eq!(object_store_endpoint(&token).as_deref(), Some("https://swift.example:443/v1/AUTH_p"));
        assert_eq!(object_store_endpoint(&json!({"token": {"catalog": []}})), None);
    }

    #[test]
    fn object_urls_keep_the_names_slashes_and_encode_the_rest() {
        let session = Session {
            storage: Url::parse("http://127.0.0.1:8080/v1/AUTH_test").unwrap(),
            token: HeaderValue::from_static("t"),
            generation: 1,
        };
        let config =
            Config::from_json(json!({"auth_address": "http://h/auth/v1.0", "user": "a:b", "key": "k"})).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _inside = rt.enter();
        let client = Client::new("chase", Arc::new(config)).unwrap();
        let url = client.url(&session, Target::Object("tank_segments", "id/n 1/00000001"));
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/v1/AUTH_test/tank_segments/id/n%201/00000001");
        assert_eq!(client.url(&session, Target::Account).as_str(), "http://127.0.0.1:8080/v1/AUTH_test");
        assert!(!format!("{session:?}").contains("\"t\""));
        assert_eq!(server(&session.storage), "127.0.0.1:8080");
    }
}
