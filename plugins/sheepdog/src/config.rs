//! The sheepdog store's `[store.sheepdog]` table: Glance's `sheepdog_store_*` options
//! without the prefix, plus a timeout, checked when the store opens so that a wrong value
//! is refused by key before any connection is made.

use std::time::Duration;

use serde::Deserialize;
use tank_sdk::{Error, Result};

use crate::proto::DEFAULT_PORT;

/// One MB in this store's options: a mebibyte.
pub const MB: u64 = 1024 * 1024;

/// The smallest and largest object sizes the store asks for, as block size shifts: 1 MiB
/// (Sheepdog's own minimum) to 64 MiB (a writer holds one object in memory, so this bounds
/// memory per upload).
const MIN_SHIFT: u8 = 20;
const MAX_SHIFT: u8 = 26;

/// Options of the sheepdog store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The sheep to talk to (any node of the cluster is a gateway): a host name or an IP
    /// address, without a port (default `localhost`, as Glance).
    #[serde(default = "default_address")]
    pub address: String,
    /// Its port (default 7000, Sheepdog's). Read as any number so that a wrong one is
    /// refused naming the key; [`Config::port`] gives it as a port.
    #[serde(default = "default_port")]
    pub port: u64,
    /// The size of the objects of the VDIs this store creates, in MB: a power of two from 1
    /// to 64 (default 4, Sheepdog's own). Sent as the VDI's block size shift; images keep
    /// the object size they were written with.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    /// Seconds to connect, and that one request may wait for its answer (default 30). Not
    /// a Glance option: Tank bounds every request so that a dead cluster is an error, never
    /// a hang.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_address() -> String {
    "localhost".into()
}

fn default_port() -> u64 {
    DEFAULT_PORT.into()
}

fn default_chunk_size() -> u64 {
    4
}

fn default_timeout() -> u64 {
    30
}

impl Config {
    /// Parses the table and checks every value, naming the key that is wrong.
    ///
    /// # Errors
    /// [`tank_sdk::ErrorKind::INVALID_CONFIG`].
    pub fn from_json(value: serde_json::Value) -> Result<Config> {
        let config: Config = serde_json::from_value(value).map_err(|e| Error::invalid_config(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::invalid_config(format!("{key}: {why}")));
        // A host name or an address only: the store never hands it to anything but the
        // resolver, but a value with a port, a path or spaces is a mistake worth naming.
        let host_ok = !self.address.is_empty()
            && self.address.len() <= 253
            && self.address.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !host_ok {
            return bad("address", "must be a host name or an IPv4 address, without a port (set port for that)");
        }
        if self.port == 0 || self.port > u64::from(u16::MAX) {
            return bad("port", "must be 1 to 65535");
        }
        if !self.chunk_size.is_power_of_two() || self.shift() < MIN_SHIFT || self.shift() > MAX_SHIFT {
            return bad("chunk_size", "must be a power of two from 1 to 64 (MB)");
        }
        if self.timeout == 0 {
            return bad("timeout", "must be at least 1 (second)");
        }
        Ok(())
    }

    /// `chunk_size` as a block size shift: the object size is `1 << shift`.
    pub fn shift(&self) -> u8 {
        // A power of two's trailing zeros; 0 (refused by check) gives 64 + 20.
        (self.chunk_size.trailing_zeros() + MB.trailing_zeros()) as u8
    }

    /// `port`, checked to fit.
    pub fn port(&self) -> u16 {
        u16::try_from(self.port).unwrap_or(DEFAULT_PORT)
    }

    /// `timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with(key: &str, value: serde_json::Value) -> Result<Config> {
        let mut v = json!({});
        v[key] = value;
        Config::from_json(v)
    }

    #[test]
    fn defaults_are_glances_and_sheepdogs() {
        let c = Config::from_json(json!({})).unwrap();
        assert_eq!((c.address.as_str(), c.port, c.chunk_size, c.timeout), ("localhost", 7000, 4, 30));
        assert_eq!(c.shift(), 22);
        assert_eq!(c.timeout(), Duration::from_secs(30));
    }

    #[test]
    fn chunk_size_is_an_object_size() {
        assert_eq!(with("chunk_size", json!(1)).unwrap().shift(), 20);
        assert_eq!(with("chunk_size", json!(64)).unwrap().shift(), 26);
        for wrong in [0, 3, 128] {
            let e = with("chunk_size", json!(wrong)).unwrap_err();
            assert_eq!(e.kind, tank_sdk::ErrorKind::INVALID_CONFIG);
            assert!(e.message.starts_with("chunk_size: must be a power of two"), "{wrong}: {}", e.message);
        }
    }

    #[test]
    fn wrong_values_are_refused_by_key() {
        for (key, value, says) in [
            ("address", json!("127.0.0.1:7000"), "address: must be a host name"),
            ("address", json!("sheep; rm -rf /"), "address: must be a host name"),
            ("address", json!(""), "address: "),
            ("port", json!(0), "port: must be 1 to 65535"),
            ("port", json!(70000), "port: must be 1 to 65535"),
            ("timeout", json!(0), "timeout: "),
        ] {
            let e = with(key, value).unwrap_err();
            assert_eq!(e.kind, tank_sdk::ErrorKind::INVALID_CONFIG);
            assert!(e.message.contains(says), "{key}: {}", e.message);
        }
        let e = with("sheepdog_store_address", json!("x")).unwrap_err().message;
        assert!(e.contains("sheepdog_store_address"), "{e}");
        assert_eq!(with("address", json!("sheep-1.internal")).unwrap().address, "sheep-1.internal");
    }
}
