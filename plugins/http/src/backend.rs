//! The http store: HEAD for sizes, streaming GETs (ranged when asked) for data, every URL
//! and every resolved address checked against `[import_filtering_opts]`.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    task::Poll,
};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    header, redirect, StatusCode, Url,
};
use tank_sdk::{
    image::import_filter::{Host, ImportFiltering},
    Error, OpenContext, Reader, Result, Store, Writer,
};

use crate::{
    config::Config,
    error::{from_reqwest, from_status, Refused},
};

/// Reads images from web servers; never writes.
pub struct HttpStore {
    client: reqwest::Client,
    rules: Arc<ImportFiltering>,
    runtime: Arc<tokio::runtime::Runtime>,
}

/// `host:port` of `url`: what messages may say about it.
fn server(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Checks what `url` says before anything is looked up (its addresses are checked by the
/// resolver, [`CheckedResolver`]).
fn check(rules: &ImportFiltering, url: &Url) -> std::result::Result<(), String> {
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) => Host::Address(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Host::Address(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => Host::Name(name),
        None => return Err("the URL names no host".into()),
    };
    let credentials = !url.username().is_empty() || url.password().is_some();
    let port = url.port_or_known_default().ok_or("the URL has no port and its scheme has no default")?;
    rules.check_url(url.scheme(), credentials, host, port)
}

/// Resolves names with the system's resolver, then refuses the lot when any address is
/// one `[import_filtering_opts]` does not allow. reqwest connects only to addresses this
/// returned, so a name cannot be re-pointed between the check and the connection.
struct CheckedResolver {
    rules: Arc<ImportFiltering>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            rules.check_addresses(&host, &ips).map_err(Refused)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Follows at most `max` redirects, each checked like the first URL.
fn redirect_policy(rules: Arc<ImportFiltering>, max: usize) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        // `previous` holds every URL requested so far, the first one included.
        if attempt.previous().len() > max {
            let why = format!("more than {max} redirects (max_redirects)");
            return attempt.error(Refused(why));
        }
        match check(&rules, attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(why) => {
                let why = format!("a redirect to {} was refused: {why}", server(attempt.url()));
                attempt.error(Refused(why))
            }
        }
    })
}

impl HttpStore {
    /// Parses and checks `location`.
    fn url(&self, location: &str) -> Result<Url> {
        let url = Url::parse(location).map_err(|e| Error::invalid_input(format!("not a valid http(s) URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid_input(format!(
                "the http store reads http and https URLs, not {}",
                url.scheme()
            )));
        }
        check(&self.rules, &url).map_err(|why| Error::invalid_input(format!("{} refused: {why}", server(&url))))?;
        Ok(url)
    }

    /// Sends `request` (redirects followed) and waits for the response's head.
    fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        // The future is made inside the runtime: reqwest arms its timers when it is created.
        self.runtime.block_on(async move { request.send().await }).map_err(|e| from_reqwest(what, e))
    }
}

impl Store for HttpStore {
    fn open(ctx: &OpenContext) -> Result<Self> {
        let config: Config = ctx.config()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tank-http")
            .enable_all()
            .build()
            .map_err(|e| Error::backend(format!("cannot start the http store's runtime: {e}")))?;
        let rules = Arc::new(config.import_filtering_opts.clone());
        let mut builder = reqwest::Client::builder()
            // A proxy would make the address checks meaningless: the connection would go
            // to the proxy, and the proxy to wherever the URL says.
            .no_proxy()
            .connect_timeout(config.timeout())
            .read_timeout(config.timeout())
            .redirect(redirect_policy(rules.clone(), config.max_redirects))
            .dns_resolver(Arc::new(CheckedResolver { rules: rules.clone() }))
            .user_agent(concat!("tank-http-store/", env!("CARGO_PKG_VERSION")));
        if let Some(file) = &config.https_ca_certificates_file {
            let path = ctx.resolve(file);
            let pem = std::fs::read(&path)
                .map_err(|e| Error::invalid_config(format!("https_ca_certificates_file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::invalid_config(format!("https_ca_certificates_file {} is not PEM: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::invalid_config(format!(
                    "https_ca_certificates_file {} holds no certificate",
                    path.display()
                )));
            }
            // As in Glance, the file replaces the system's authorities.
            builder = builder.tls_certs_only(certs);
        }
        if config.https_insecure {
            tracing::warn!(store = %ctx.name, "https_insecure is set: servers' certificates are not verified");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = {
            let _inside = runtime.enter();
            builder.build().map_err(|e| Error::invalid_config(format!("cannot build the HTTP client: {e}")))?
        };
        Ok(HttpStore { client, rules, runtime: Arc::new(runtime) })
    }

    fn add(&self, _image_id: &str, _size: Option<u64>) -> Result<Box<dyn Writer>> {
        Err(Error::unsupported(
            "the http store is read-only: it serves images registered by URL; upload to another store",
        ))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let url = self.url(location)?;
        let what = format!("GET from {}", server(&url));
        let mut request = self.client.get(url);
        let ranged = offset > 0 || length.is_some();
        if ranged {
            let end = length.map(|l| (offset + l).saturating_sub(1).to_string()).unwrap_or_default();
            if length == Some(0) {
                return Ok(Box::new(std::io::empty()));
            }
            request = request.header(header::RANGE, format!("bytes={offset}-{end}"));
        }
        let response = self.send(&what, request)?;
        let (skip, left) = match response.status() {
            StatusCode::PARTIAL_CONTENT if ranged => (0, length),
            // The server ignored the range: skip to the offset here.
            StatusCode::OK => (offset, length),
            StatusCode::RANGE_NOT_SATISFIABLE if ranged => return Ok(Box::new(std::io::empty())),
            status => return Err(from_status(&what, status)),
        };
        Ok(Box::new(HttpReader {
            response,
            pending: Default::default(),
            skip,
            left,
            runtime: self.runtime.clone(),
            what,
            failed: None,
        }))
    }

    fn size(&self, location: &str) -> Result<u64> {
        let url = self.url(location)?;
        let what = format!("HEAD to {}", server(&url));
        let response = self.send(&what, self.client.head(url))?;
        if !response.status().is_success() {
            return Err(from_status(&what, response.status()));
        }
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Error::invalid_input(format!("{what} gave no Content-Length, so the image's size is unknown"))
            })
    }

    fn delete(&self, _location: &str) -> Result<()> {
        Err(Error::unsupported("the http store is read-only: the data stays on its web server"))
    }

    fn discard(&self, _image_id: &str) -> Result<()> {
        // Nothing is ever written, so nothing is ever left behind.
        Ok(())
    }
}

/// One GET's body, read chunk by chunk as reqwest delivers it.
struct HttpReader {
    response: reqwest::Response,
    pending: bytes::Bytes,
    /// Bytes still to drop before the requested offset (a server that ignored `Range`).
    skip: u64,
    /// Bytes still to hand over, when a length was asked for.
    left: Option<u64>,
    runtime: Arc<tokio::runtime::Runtime>,
    what: String,
    /// A failure met after some bytes were copied, returned by the next call.
    failed: Option<Error>,
}

impl Reader for HttpReader {
    /// Waits for the first piece, then also takes every piece that has already arrived, up
    /// to `buf`'s length: one call per buffer rather than one per network frame.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut filled = 0;
        while filled < buf.len() && self.left != Some(0) {
            if self.pending.is_empty() {
                // A body cut short before its Content-Length is an error here, never a
                // quiet end, so a short download cannot pass for a whole one.
                let wait = filled == 0 || self.skip > 0;
                let response = &mut self.response;
                let next = self.runtime.block_on(async move {
                    let mut chunk = std::pin::pin!(response.chunk());
                    if wait {
                        return Some(chunk.await);
                    }
                    // Polled once: a piece that has not arrived yet is not waited for.
                    std::future::poll_fn(|cx| match chunk.as_mut().poll(cx) {
                        Poll::Ready(r) => Poll::Ready(Some(r)),
                        Poll::Pending => Poll::Ready(None),
                    })
                    .await
                });
                match next {
                    None => break,
                    Some(Ok(Some(chunk))) => self.pending = chunk,
                    Some(Ok(None)) => break,
                    Some(Err(e)) => {
                        let e = from_reqwest(&self.what, e);
                        if filled == 0 {
                            return Err(e);
                        }
                        // The bytes already copied go first; the failure is the next call's
                        // answer, never a quiet end.
                        self.failed = Some(e);
                        break;
                    }
                }
            }
            if self.skip > 0 {
                let n = self.skip.min(self.pending.len() as u64) as usize;
                let _ = self.pending.split_to(n);
                self.skip -= n as u64;
                continue;
            }
            let mut n = (buf.len() - filled).min(self.pending.len());
            if let Some(left) = self.left {
                n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
                self.left = Some(left - n as u64);
            }
            buf[filled..filled + n].copy_from_slice(&self.pending.split_to(n));
            filled += n;
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_in_their_canonical_form() {
        let rules = ImportFiltering::default();
        for url in [
            "http://127.1/x",
            "http://2130706433/x",
            "http://0x7f000001/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let e = check(&rules, &Url::parse(url).unwrap()).unwrap_err();
            assert!(e.contains("internal address"), "{url}: {e}");
        }
        let e = check(&rules, &Url::parse("http://user:pw@8.8.8.8/x").unwrap()).unwrap_err();
        assert!(e.contains("credentials"), "{e}");
        assert!(check(&rules, &Url::parse("https://8.8.8.8/x").unwrap()).is_ok());
        let e = check(&rules, &Url::parse("http://8.8.8.8:8080/x").unwrap()).unwrap_err();
        assert!(e.contains("port 8080"), "{e}");
    }

    #[test]
    fn messages_name_the_server_not_the_path() {
        assert_eq!(server(&Url::parse("https://images.example/secret/path?sig=1").unwrap()), "images.example:443");
    }
}
