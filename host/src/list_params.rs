//! The list parameters of Glance's v1 API and registry API (reference §1.5): filters,
//! sort and paging, checked and turned into a [`ListQuery`]. The API server and the
//! registry server read them with this one parser; they differ only in the defaults
//! [`Rules`] names.

use std::collections::BTreeMap;

use serde_json::json;
use tank_core::query::{ListQuery, SortDir, SortKey, Viewer};

/// What a server's lists assume when a request says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Page size when the request names no `limit` (`limit_param_default`).
    pub limit_default: u32,
    /// The largest page; larger limits are cut to it (`api_limit_max`).
    pub limit_max: u32,
    /// The `is_public` filter when the request names none.
    pub is_public_default: Option<bool>,
    /// Refuse parameters this parser does not know (the API), or ignore them as Glance's
    /// registry did.
    pub refuse_unknown: bool,
}

/// The pairs of a query string, both sides percent-decoded (`+` is a space).
pub fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(&key.replace('+', " ")), percent_decode(&value.replace('+', " ")))
    })
}

/// The list `query` asks for on behalf of `viewer`. A bad value (or, with
/// `refuse_unknown`, an unknown parameter) is an error message naming the parameter and
/// saying what it takes.
pub fn parse(query: &str, viewer: Viewer, rules: Rules) -> Result<ListQuery, String> {
    let mut q = ListQuery::new(viewer);
    q.limit = rules.limit_default;
    q.filters.is_public = rules.is_public_default;
    let mut properties = BTreeMap::new();
    for (key, value) in pairs(query) {
        let bad = |why: &str| format!("invalid {key} {value:?}: {why}");
        let count = || value.parse::<u64>().map_err(|_| bad("must be a whole number of 0 or more"));
        let flag = || match value.to_ascii_lowercase().as_str() {
            "none" => Ok(None),
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(bad("must be true, false or none")),
        };
        match key.as_str() {
            "limit" => {
                q.limit =
                    value.parse::<u32>().map_err(|_| bad("must be a whole number of 0 or more"))?.min(rules.limit_max)
            }
            "marker" => q.marker = Some(value.parse().map_err(|_| bad("must be an image id"))?),
            "sort_key" => {
                q.sort_key = serde_json::from_value::<SortKey>(json!(value)).map_err(|_| {
                    bad("must be one of id, name, status, disk_format, container_format, size, created_at, updated_at")
                })?
            }
            "sort_dir" => {
                q.sort_dir = serde_json::from_value::<SortDir>(json!(value)).map_err(|_| bad("must be asc or desc"))?
            }
            "changes-since" => {
                // A `+` offset arrives as a space when the client did not escape it.
                let when = value.replace(' ', "+");
                q.filters.changes_since = Some(when.parse().map_err(|_| bad("must be an ISO 8601 time"))?)
            }
            "name" => q.filters.name = Some(value.clone()),
            "status" => q.filters.status = Some(value.parse().map_err(|e| bad(&format!("{e}")))?),
            "disk_format" => q.filters.disk_format = Some(value.parse().map_err(|e| bad(&format!("{e}")))?),
            "container_format" => q.filters.container_format = Some(value.parse().map_err(|e| bad(&format!("{e}")))?),
            "size_min" => q.filters.size_min = Some(count()?),
            "size_max" => q.filters.size_max = Some(count()?),
            "min_ram" => q.filters.min_ram = Some(count()?),
            "min_disk" => q.filters.min_disk = Some(count()?),
            "is_public" => q.filters.is_public = flag()?,
            "protected" => q.filters.protected = flag()?,
            other => match other.strip_prefix("property-") {
                Some(name) if !name.is_empty() => {
                    properties.insert(name.to_owned(), value.clone());
                }
                _ if rules.refuse_unknown => {
                    return Err(format!(
                        "unknown list parameter {other:?}; filters are name, status, disk_format, container_format, \
                         size_min, size_max, min_ram, min_disk, is_public, protected, changes-since and \
                         property-<key>; paging takes limit, marker, sort_key and sort_dir"
                    ))
                }
                _ => {}
            },
        }
    }
    q.filters.properties = properties;
    Ok(q)
}

/// Decodes `%XX` escapes in a query value; a malformed escape is kept as it is.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
