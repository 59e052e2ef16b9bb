//! The http store's `[store.http]` table, plus the `import_filtering_opts` the host adds.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;
use tank_sdk::image::import_filter::ImportFiltering;

/// Options of the http store, under Glance's names where Glance has them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seconds to connect, to get a response's head, and between two reads of its body
    /// (default 30). A stalled server fails the transfer after this long; a slow but
    /// moving one never does.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Redirects followed per request, each checked like the first URL (default 5, as
    /// Glance).
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,
    /// A PEM file of the certificate authorities to trust instead of the system's
    /// (Glance's `https_ca_certificates_file`); relative to the configuration file.
    #[serde(default)]
    pub https_ca_certificates_file: Option<PathBuf>,
    /// Skip verifying servers' certificates (Glance's `https_insecure`, whose default was
    /// `true`; Tank's is `false`).
    #[serde(default)]
    pub https_insecure: bool,
    /// The host's `[import_filtering_opts]`, which it adds to this table.
    #[serde(default)]
    pub import_filtering_opts: ImportFiltering,
}

fn default_timeout() -> u64 {
    30
}

fn default_max_redirects() -> usize {
    5
}

impl Config {
    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_are_glances_but_tls_is_verified() {
        let c = parse("{}").unwrap();
        assert_eq!((c.timeout, c.max_redirects, c.https_insecure), (30, 5, false));
        assert_eq!(c.import_filtering_opts, ImportFiltering::default());
    }

    #[test]
    fn the_host_rules_and_glance_names_parse_and_typos_are_named() {
        let c = parse(
            r#"{"timeout": 5, "https_ca_certificates_file": "ca.pem",
                "import_filtering_opts": {"allowed_hosts": ["127.0.0.1"], "allowed_ports": [8080]}}"#,
        )
        .unwrap();
        assert_eq!(c.timeout(), Duration::from_secs(5));
        assert_eq!(c.https_ca_certificates_file, Some(PathBuf::from("ca.pem")));
        assert_eq!(c.import_filtering_opts.allowed_ports, [8080]);
        let e = parse(r#"{"max_redirect": 3}"#).unwrap_err().to_string();
        assert!(e.contains("max_redirect"), "{e}");
    }
}
