//! The sled driver's `[registry.sled]` table.

use std::path::PathBuf;

use serde::Deserialize;

/// Options of the sled registry driver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The database directory, relative to the configuration file's directory.
    pub path: PathBuf,
    /// sled's page cache, in MB (default 64).
    #[serde(default = "default_cache_mb")]
    pub cache_capacity_mb: u64,
}

fn default_cache_mb() -> u64 {
    64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_required_and_typos_are_named() {
        let ok: Config = serde_json::from_value(serde_json::json!({"path": "var/registry"})).unwrap();
        assert_eq!((ok.path, ok.cache_capacity_mb), (PathBuf::from("var/registry"), 64));
        let e = serde_json::from_value::<Config>(serde_json::json!({})).unwrap_err().to_string();
        assert!(e.contains("path"), "{e}");
        let e = serde_json::from_value::<Config>(serde_json::json!({"path": "x", "pth": "y"})).unwrap_err().to_string();
        assert!(e.contains("pth"), "{e}");
    }
}
