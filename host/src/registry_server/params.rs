//! The query parameters of the list endpoints (reference §1.5): filters, sort and paging,
//! checked and turned into a [`ListQuery`] for the caller.

use serde_json::json;
use tank_core::{
    query::{ListQuery, SortDir, SortKey},
    ImageId,
};

use super::{context::Context, error::RegistryError};
use crate::api::images::percent_decode;

/// The page limits of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Page size when the request names none.
    pub default: u32,
    /// The largest page; larger limits are cut to it.
    pub max: u32,
}

/// Glance's boolean filter values: `none` means "no filter".
fn tri_state(value: &str) -> Option<Option<bool>> {
    match value.to_ascii_lowercase().as_str() {
        "none" => Some(None),
        "true" | "1" => Some(Some(true)),
        "false" | "0" => Some(Some(false)),
        _ => None,
    }
}

/// The key/value pairs of a query string, decoded.
pub fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(&key.replace('+', " ")), percent_decode(&value.replace('+', " ")))
    })
}

/// The list query `query` asks for, on behalf of `ctx`. Parameters Glance does not know are
/// ignored, as Glance's registry ignored them.
pub fn list_query(query: &str, ctx: &Context, limits: Limits) -> Result<ListQuery, RegistryError> {
    let mut q = ListQuery::new(ctx.viewer());
    q.limit = limits.default;
    for (key, value) in pairs(query) {
        let bad = |why: &str| RegistryError::bad_request(format!("invalid {key} {value:?}: {why}"));
        let whole = || value.parse::<u64>().map_err(|_| bad("must be a whole number of 0 or more"));
        let f = &mut q.filters;
        match key.as_str() {
            "name" => f.name = Some(value.clone()),
            "status" => f.status = Some(value.parse().map_err(|e: tank_core::Error| bad(&e.to_string()))?),
            "disk_format" => f.disk_format = Some(value.parse().map_err(|e: tank_core::Error| bad(&e.to_string()))?),
            "container_format" => {
                f.container_format = Some(value.parse().map_err(|e: tank_core::Error| bad(&e.to_string()))?)
            }
            "size_min" => f.size_min = Some(whole()?),
            "size_max" => f.size_max = Some(whole()?),
            "min_ram" => f.min_ram = Some(whole()?),
            "min_disk" => f.min_disk = Some(whole()?),
            "is_public" => f.is_public = tri_state(&value).ok_or_else(|| bad("must be true, false or none"))?,
            "protected" => f.protected = tri_state(&value).ok_or_else(|| bad("must be true, false or none"))?,
            "changes-since" => {
                // A `+` offset arrives as a space when the client did not escape it.
                let when = value.replace(' ', "+");
                f.changes_since = Some(when.parse().map_err(|_| bad("must be an ISO 8601 time"))?)
            }
            "limit" => {
                let n = value.parse::<u32>().map_err(|_| bad("must be a whole number of 0 or more"))?;
                q.limit = n.min(limits.max);
            }
            "marker" => q.marker = Some(value.parse::<ImageId>().map_err(|_| bad("invalid marker format"))?),
            "sort_key" => {
                q.sort_key = serde_json::from_value::<SortKey>(json!(value)).map_err(|_| {
                    bad("must be one of id, name, status, disk_format, container_format, size, created_at, updated_at")
                })?
            }
            "sort_dir" => {
                q.sort_dir = serde_json::from_value::<SortDir>(json!(value)).map_err(|_| bad("must be asc or desc"))?
            }
            k => {
                if let Some(prop) = k.strip_prefix("property-") {
                    f.properties.insert(prop.to_owned(), value.clone());
                }
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use tank_core::{DiskFormat, Status};

    use super::*;

    const LIMITS: Limits = Limits { default: 25, max: 1000 };

    fn admin() -> Context {
        Context { is_admin: true, tenant: None }
    }

    #[test]
    fn filters_sort_and_paging_are_read() {
        let q = list_query(
            "name=a%20b&status=active&disk_format=qcow2&size_min=10&is_public=none&protected=1&property-os=linux\
             &sort_key=size&sort_dir=asc&limit=5&unknown=x",
            &admin(),
            LIMITS,
        )
        .unwrap();
        assert_eq!(q.filters.name.as_deref(), Some("a b"));
        assert_eq!(q.filters.status, Some(Status::Active));
        assert_eq!(q.filters.disk_format, Some(DiskFormat::Qcow2));
        assert_eq!((q.filters.size_min, q.filters.is_public, q.filters.protected), (Some(10), None, Some(true)));
        assert_eq!(q.filters.properties["os"], "linux");
        assert_eq!((q.sort_key, q.sort_dir, q.limit), (SortKey::Size, SortDir::Asc, 5));
    }

    #[test]
    fn limits_come_from_the_configuration() {
        let limits = Limits { default: 7, max: 9 };
        assert_eq!(list_query("", &admin(), limits).unwrap().limit, 7);
        assert_eq!(list_query("limit=100", &admin(), limits).unwrap().limit, 9);
    }

    #[test]
    fn bad_values_are_400s_naming_the_parameter() {
        for bad in [
            "limit=-1",
            "marker=nope",
            "sort_key=colour",
            "sort_dir=up",
            "size_max=big",
            "is_public=maybe",
            "status=sleeping",
            "disk_format=floppy",
            "changes-since=yesterday",
        ] {
            let e = list_query(bad, &admin(), LIMITS).unwrap_err();
            let key = bad.split('=').next().unwrap();
            assert_eq!(e.status, 400, "{bad}");
            assert!(e.message.contains(key), "{bad}: {}", e.message);
        }
    }
}
