//! The query parameters of the list endpoints (reference §1.5): filters, sort and paging,
//! checked and turned into a [`ListQuery`] for the caller.

use tank_core::{query::ListQuery, Caller};

use super::error::RegistryError;
pub use crate::list_params::pairs;
use crate::list_params::{self, Rules};

/// The page limits of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Page size when the request names none.
    pub default: u32,
    /// The largest page; larger limits are cut to it.
    pub max: u32,
}

/// The list query `query` asks for, on behalf of `ctx`. Parameters Glance does not know are
/// ignored, as Glance's registry ignored them, and `is_public` filters only when given:
/// the API server sends its own default in the query it passes on.
pub fn list_query(query: &str, ctx: &Caller, limits: Limits) -> Result<ListQuery, RegistryError> {
    let rules =
        Rules { limit_default: limits.default, limit_max: limits.max, is_public_default: None, refuse_unknown: false };
    list_params::parse(query, ctx.viewer(), rules).map_err(RegistryError::bad_request)
}

#[cfg(test)]
mod tests {
    use tank_core::{
        query::{SortDir, SortKey},
        DiskFormat, Status,
    };

    use super::*;

    const LIMITS: Limits = Limits { default: 25, max: 1000 };

    fn admin() -> Caller {
        Caller::admin()
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
