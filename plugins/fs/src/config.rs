//! The fs store's `[store.filesystem]` table.

use std::path::PathBuf;

use serde::Deserialize;

/// Options of the fs store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory holding image files (Glance's `filesystem_store_datadir`); relative
    /// to the configuration file's directory. Created if missing.
    pub datadir: PathBuf,
    /// Write image data with `O_DIRECT`, bypassing the page cache (default `true`; see the
    /// plugin's README). Where the filesystem refuses it, writes go through the page cache.
    #[serde(default = "direct_io_default")]
    pub direct_io: bool,
}

fn direct_io_default() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datadir_is_required_and_typos_are_named() {
        let ok: Config = serde_json::from_value(serde_json::json!({"datadir": "var/images"})).unwrap();
        assert_eq!(ok.datadir, PathBuf::from("var/images"));
        let missing = serde_json::from_value::<Config>(serde_json::json!({})).unwrap_err().to_string();
        assert!(missing.contains("datadir"), "{missing}");
        let typo =
            serde_json::from_value::<Config>(serde_json::json!({"datadir": "x", "dir": "y"})).unwrap_err().to_string();
        assert!(typo.contains("dir"), "{typo}");
    }

    #[test]
    fn direct_io_is_on_unless_turned_off() {
        let default: Config = serde_json::from_value(serde_json::json!({"datadir": "d"})).unwrap();
        assert!(default.direct_io);
        let off: Config = serde_json::from_value(serde_json::json!({"datadir": "d", "direct_io": false})).unwrap();
        assert!(!off.direct_io);
        let e = serde_json::from_value::<Config>(serde_json::json!({"datadir": "d", "direct_io": "yes"})).unwrap_err();
        assert!(e.to_string().contains("boolean"), "{e}");
    }
}
