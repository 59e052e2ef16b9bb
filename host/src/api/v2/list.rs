//! `GET /v2/images` parameters (reference §7.3): filters with their operators, the two
//! sort forms, and paging, into a [`ListQuery`]; and the `first`/`next` links.
//!
//! A name that is no base attribute filters by custom property, as in Glance: v2 has no
//! unknown list parameter.

use std::collections::BTreeSet;

use serde_json::json;
use tank_core::{
    query::{Cmp, InField, ListQuery, SortDir, SortKey, TimeField, TimeFilter, VisibilityFilter},
    Caller, MemberStatus,
};

use crate::{api::error::ApiError, config::ApiSettings, list_params};

/// The query `query` asks for on behalf of `who`.
pub fn parse(query: &str, who: &Caller, api: &ApiSettings) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery::new(who.viewer());
    q.limit = api.limit_param_default;
    // v2's defaults: accepted memberships only, no hidden images, community images only
    // when asked for (the query's own rule).
    q.filters.member_status = Some(MemberStatus::Accepted);
    q.filters.os_hidden = Some(false);
    let mut sort_keys: Vec<(SortKey, Option<SortDir>)> = Vec::new();
    let (mut sort_key_params, mut sort_dirs, mut sort_param) = (Vec::new(), Vec::new(), false);
    for (key, value) in list_params::pairs(query) {
        let bad = |why: &str| ApiError::bad_request(format!("invalid {key} {value:?}: {why}"));
        let count = || value.parse::<u64>().map_err(|_| bad("must be a whole number of 0 or more"));
        let flag = || match value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad("must be true or false")),
        };
        match key.as_str() {
            "limit" => {
                q.limit =
                    value.parse::<u32>().map_err(|_| bad("must be a whole number of 0 or more"))?.min(api.api_limit_max)
            }
            "marker" => q.marker = Some(value.parse().map_err(|_| bad("must be an image id"))?),
            "sort_key" => sort_key_params.push(sort_key(&value).map_err(|w| bad(&w))?),
            "sort_dir" => sort_dirs.push(sort_dir(&value).map_err(|w| bad(&w))?),
            "sort" => {
                sort_param = true;
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (k, d) = part.split_once(':').map_or((part, None), |(k, d)| (k, Some(d)));
                    let dir = d.map(sort_dir).transpose().map_err(|w| bad(&w))?;
                    sort_keys.push((sort_key(k).map_err(|w| bad(&w))?, dir));
                }
            }
            "name" | "status" | "disk_format" | "container_format" | "id" => {
                let field = match key.as_str() {
                    "name" => InField::Name,
                    "status" => InField::Status,
                    "disk_format" => InField::DiskFormat,
                    "container_format" => InField::ContainerFormat,
                    _ => InField::Id,
                };
                let values = match value.strip_prefix("in:") {
                    Some(list) => split_list(list),
                    None => BTreeSet::from([value.strip_prefix("eq:").unwrap_or(&value).to_owned()]),
                };
                for v in &values {
                    check_value(field, v).map_err(|w| bad(&w))?;
                }
                let set = q.filters.one_of.entry(field).or_insert_with(|| values.clone());
                *set = set.intersection(&values).cloned().collect();
            }
            "visibility" => {
                q.filters.visibility = Some(
                    serde_json::from_value::<VisibilityFilter>(json!(value))
                        .map_err(|_| bad("must be public, private, shared, community or all"))?,
                )
            }
            "member_status" => {
                q.filters.member_status = match value.as_str() {
                    "all" => None,
                    v => Some(v.parse().map_err(|_| bad("must be pending, accepted, rejected or all"))?),
                }
            }
            "os_hidden" => q.filters.os_hidden = Some(flag()?),
            "protected" => q.filters.protected = Some(flag()?),
            "owner" => q.filters.owner = Some(value.clone()),
            "checksum" => q.filters.checksum = Some(value.clone()),
            "os_hash_value" => q.filters.os_hash_value = Some(value.clone()),
            "tag" => {
                q.filters.tags.insert(value.clone());
            }
            "size_min" => q.filters.size_min = Some(count()?),
            "size_max" => q.filters.size_max = Some(count()?),
            "created_at" | "updated_at" => {
                let field = if key == "created_at" { TimeField::CreatedAt } else { TimeField::UpdatedAt };
                let (op, when) = match value.split_once(':') {
                    Some((op, rest)) if Cmp::ALL.iter().any(|(_, n)| *n == op) => {
                        (Cmp::ALL.iter().find(|(_, n)| *n == op).expect("found").0, rest)
                    }
                    _ => (Cmp::Eq, value.as_str()),
                };
                // A `+` offset arrives as a space when the client did not escape it.
                let at = when.replace(' ', "+").parse().map_err(|_| {
                    bad("must be an ISO 8601 time, optionally after one of gt:, gte:, eq:, neq:, lt:, lte:")
                })?;
                q.filters.times.push(TimeFilter { field, op, at });
            }
            property => {
                q.filters.properties.insert(property.to_owned(), value.clone());
            }
        }
    }
    if sort_param && (!sort_key_params.is_empty() || !sort_dirs.is_empty()) {
        return Err(ApiError::bad_request("use either sort or sort_key and sort_dir, not both"));
    }
    if !sort_param {
        if sort_dirs.len() > 1 && sort_dirs.len() != sort_key_params.len() {
            return Err(ApiError::bad_request(
                "give one sort_dir for every sort_key, or a single sort_dir for them all",
            ));
        }
        if sort_key_params.is_empty() && !sort_dirs.is_empty() {
            sort_key_params.push(SortKey::CreatedAt);
        }
        let one = sort_dirs.first().copied().filter(|_| sort_dirs.len() == 1);
        sort_keys = sort_key_params
            .into_iter()
            .enumerate()
            .map(|(n, k)| (k, one.or_else(|| sort_dirs.get(n).copied())))
            .collect();
    }
    let mut seen = Vec::new();
    for (k, _) in &sort_keys {
        if seen.contains(k) {
            return Err(ApiError::bad_request(format!("sort key {} is given twice", key_name(*k))));
        }
        seen.push(*k);
    }
    let mut keys = sort_keys.into_iter().map(|(k, d)| (k, d.unwrap_or(SortDir::Desc)));
    if let Some((key, dir)) = keys.next() {
        (q.sort_key, q.sort_dir) = (key, dir);
    }
    q.then_by = keys.collect();
    Ok(q)
}

/// The values of an `in:` list: comma-separated, a value with a comma in double quotes.
fn split_list(list: &str) -> BTreeSet<String> {
    let (mut out, mut cur, mut quoted) = (BTreeSet::new(), String::new(), false);
    for c in list.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.insert(std::mem::take(&mut cur));
            }
            c => cur.push(c),
        }
    }
    out.insert(cur);
    out
}

fn check_value(field: InField, value: &str) -> Result<(), String> {
    match field {
        InField::Status => value.parse::<tank_core::Status>().map(drop).map_err(|e| e.to_string()),
        InField::DiskFormat => value.parse::<tank_core::DiskFormat>().map(drop).map_err(|e| e.to_string()),
        InField::ContainerFormat => value.parse::<tank_core::ContainerFormat>().map(drop).map_err(|e| e.to_string()),
        InField::Id | InField::Name => Ok(()),
    }
}

const SORT_KEYS: &str = "name, status, container_format, disk_format, size, id, created_at, updated_at";

fn sort_key(name: &str) -> Result<SortKey, String> {
    serde_json::from_value::<SortKey>(json!(name)).map_err(|_| format!("the sort keys are {SORT_KEYS}"))
}

fn key_name(key: SortKey) -> String {
    serde_json::to_value(key).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn sort_dir(name: &str) -> Result<SortDir, String> {
    serde_json::from_value::<SortDir>(json!(name)).map_err(|_| "a sort direction is asc or desc".into())
}

/// The `next` link of a full page: the request's own parameters, with the marker moved
/// to the page's last image.
pub fn next_link(query: &str, last: tank_core::ImageId) -> String {
    let mut params = without_marker(query);
    if !params.is_empty() {
        params.push('&');
    }
    format!("/v2/images?{params}marker={last}")
}

/// The `first` link: the request's own parameters without a marker.
pub fn first_link(query: &str) -> String {
    match without_marker(query) {
        params if params.is_empty() => "/v2/images".to_owned(),
        params => format!("/v2/images?{params}"),
    }
}

fn without_marker(query: &str) -> String {
    let kept: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("marker=")).collect();
    kept.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(query: &str) -> Result<ListQuery, ApiError> {
        parse(query, &Caller::admin(), &ApiSettings::default())
    }

    #[test]
    fn defaults_are_v2s() {
        let d = q("").unwrap();
        assert_eq!((d.limit, d.sort_key, d.sort_dir), (25, SortKey::CreatedAt, SortDir::Desc));
        assert_eq!(d.filters.member_status, Some(MemberStatus::Accepted));
        assert_eq!(d.filters.os_hidden, Some(false));
        assert_eq!(d.filters.visibility, None);
        assert_eq!(q("member_status=all").unwrap().filters.member_status, None);
        assert_eq!(q("limit=5000").unwrap().limit, 1000);
    }

    #[test]
    fn both_sort_forms_give_the_same_query() {
        let a = q("sort=name:asc,size:desc,id").unwrap();
        let b = q("sort_key=name&sort_dir=asc&sort_key=size&sort_dir=desc&sort_key=id&sort_dir=desc").unwrap();
        assert_eq!(a, b);
        assert_eq!((a.sort_key, a.sort_dir), (SortKey::Name, SortDir::Asc));
        assert_eq!(a.then_by, vec![(SortKey::Size, SortDir::Desc), (SortKey::Id, SortDir::Desc)]);
        let one_dir = q("sort_key=name&sort_key=size&sort_dir=asc").unwrap();
        assert_eq!(one_dir.then_by, vec![(SortKey::Size, SortDir::Asc)]);
        for bad in [
            "sort=name&sort_key=size",
            "sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc",
            "sort=name,name",
            "sort=colour",
            "sort=name:up",
        ] {
            assert_eq!(q(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn operators_and_properties() {
        let f = q("status=in:active,queued&name=in:%22a,b%22,c&created_at=gte:2020-01-01T00:00:00Z\
                   &updated_at=lt:2030-01-01T00:00:00Z&tag=x&tag=y&owner_specified.openstack.md5=abc&id=eq:7")
        .unwrap()
        .filters;
        assert_eq!(f.one_of[&InField::Status], BTreeSet::from(["active".to_string(), "queued".to_string()]));
        assert_eq!(f.one_of[&InField::Name], BTreeSet::from(["a,b".to_string(), "c".to_string()]));
        assert_eq!(f.one_of[&InField::Id], BTreeSet::from(["7".to_string()]));
        assert_eq!(f.times.len(), 2);
        assert_eq!(f.times[0].op, Cmp::Gte);
        assert_eq!(f.tags.len(), 2);
        assert_eq!(f.properties["owner_specified.openstack.md5"], "abc");
        assert!(q("status=in:active,sleeping").is_err());
        assert!(q("created_at=gt:yesterday").is_err());
        assert!(q("os_hidden=maybe").is_err());
        assert!(q("visibility=everyone").is_err());
    }

    #[test]
    fn next_keeps_the_query_and_moves_the_marker() {
        let id = tank_core::ImageId::random();
        assert_eq!(next_link("limit=2&marker=abc&sort=name", id), format!("/v2/images?limit=2&sort=name&marker={id}"));
        assert_eq!(next_link("", id), format!("/v2/images?marker={id}"));
    }
}
