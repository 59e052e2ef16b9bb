//! The remote driver's `[registry.remote]` table.

use std::time::Duration;

use serde::Deserialize;
use tank_sdk::{Error, Result};

/// Options of the remote registry driver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The registry's base URL, `http://host:9191`.
    pub url: String,
    /// How long one request may take, connecting included, in seconds (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How long connecting may take, in seconds (default 5).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

fn default_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    5
}

/// Where the registry is, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://host:port`, with no path and no credentials: safe for messages.
    pub base: String,
    /// Limit of one request.
    pub timeout: Duration,
    /// Limit of connecting.
    pub connect_timeout: Duration,
}

impl Config {
    /// Checks the URL and the timeouts.
    ///
    /// # Errors
    /// `INVALID_CONFIG` for a URL that is not `http://host[:port]`, or a zero timeout.
    pub fn endpoint(&self) -> Result<Endpoint> {
        let bad = |why: &str| Error::invalid_config(format!("[registry.remote] url: {why}"));
        let uri: http::Uri = self.url.trim().parse().map_err(|_| bad("is not a URL; write it as http://host:9191"))?;
        let authority = uri.authority().ok_or_else(|| bad("names no host; write it as http://host:9191"))?;
        if authority.as_str().contains('@') {
            // Never echo the URL here: the part before '@' is a credential.
            return Err(bad("holds credentials, which the registry does not use; give only http://host:port"));
        }
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(&format!(
                    "{}: https is not supported; the registry is internal, serve it on a private network over http",
                    self.url
                )))
            }
            _ => return Err(bad(&format!("{}: the scheme must be http", self.url))),
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad(&format!("{}: give only http://host:port; the registry's paths are fixed", self.url)));
        }
        if self.timeout_secs == 0 || self.connect_timeout_secs == 0 {
            return Err(Error::invalid_config(
                "[registry.remote] timeout_secs and connect_timeout_secs must be 1 or more",
            ));
        }
        let port = authority.port_u16().unwrap_or(80);
        Ok(Endpoint {
            base: format!("http://{}:{port}", authority.host()),
            timeout: Duration::from_secs(self.timeout_secs),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Config {
        serde_json::from_value(serde_json::json!({ "url": url })).unwrap()
    }

    #[test]
    fn url_is_required_and_typos_are_named() {
        let e = serde_json::from_value::<Config>(serde_json::json!({})).unwrap_err().to_string();
        assert!(e.contains("url"), "{e}");
        let e = serde_json::from_value::<Config>(serde_json::json!({"url": "http://h", "timout_secs": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("timout_secs"), "{e}");
    }

    #[test]
    fn endpoints_are_plain_http_host_and_port() {
        let e = config("http://registry.internal:9191/").endpoint().unwrap();
        assert_eq!(e.base, "http://registry.internal:9191");
        assert_eq!((e.timeout, e.connect_timeout), (Duration::from_secs(30), Duration::from_secs(5)));
        assert_eq!(config("http://10.0.0.2").endpoint().unwrap().base, "http://10.0.0.2:80");
        for bad in ["https://h:9191", "ftp://h", "http://h:9191/v1", "registry:9191", "/images"] {
            assert!(config(bad).endpoint().is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_being_repeated() {
        let e = config("http://admin:hunter2@h:9191").endpoint().unwrap_err();
        assert!(e.message.contains("credentials") && !e.message.contains("hunter2"), "{}", e.message);
    }
}
