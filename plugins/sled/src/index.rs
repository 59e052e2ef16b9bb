//! Keyset index keys: for each sort key, a byte string per image whose byte order is the
//! order [`ListQuery::compare`] defines in the ascending direction (the descending order is
//! the same keys walked backwards).
//!
//! A key is the sort value, then `created_at`, then the id: the same tie-breakers as
//! `compare`, so every key is unique and a marker's key is an exact position. Sorting by
//! id needs no index: the records' own keys are the 16 id bytes, which sort like ids.
//!
//! [`ListQuery::compare`]: tank_sdk::image::query::ListQuery::compare

use tank_sdk::image::{query::SortKey, Image, ImageId, Timestamp};

/// The sort keys that have an index tree, with the tree's name.
pub const INDEXED: [(SortKey, &str); 7] = [
    (SortKey::Name, "index/name"),
    (SortKey::Status, "index/status"),
    (SortKey::DiskFormat, "index/disk_format"),
    (SortKey::ContainerFormat, "index/container_format"),
    (SortKey::Size, "index/size"),
    (SortKey::CreatedAt, "index/created_at"),
    (SortKey::UpdatedAt, "index/updated_at"),
];

/// The key of `image` in the index of `key`; for [`SortKey::Id`], its record key.
pub fn entry(key: SortKey, image: &Image) -> Vec<u8> {
    if key == SortKey::Id {
        return image.id.as_bytes().to_vec();
    }
    let mut out = sort_value(key, image);
    out.extend_from_slice(&timestamp(image.created_at));
    out.extend_from_slice(image.id.as_bytes());
    out
}

/// The id at the end of an index key.
pub fn id_of(entry: &[u8]) -> Option<ImageId> {
    let tail = entry.len().checked_sub(16).map(|at| &entry[at..])?;
    Some(ImageId::from_bytes(tail.try_into().ok()?))
}

/// A big-endian `u64` as the usage tree stores it; anything else (a damaged value) is 0.
pub fn decode_u64(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

/// The prefix of every `status` index key of images in `status`.
pub fn status_prefix(status: &tank_sdk::image::Status) -> Vec<u8> {
    let mut out = Vec::new();
    text(&mut out, status.as_str());
    out
}

/// The sort value alone, encoded so that byte order is the value's order and no value's
/// encoding is a prefix of another's (so the tie-breakers that follow cannot interfere).
fn sort_value(key: SortKey, image: &Image) -> Vec<u8> {
    let mut out = Vec::new();
    match key {
        SortKey::Id | SortKey::CreatedAt => {}
        SortKey::Name => optional_text(&mut out, image.name.as_deref()),
        SortKey::Status => text(&mut out, image.status.as_str()),
        SortKey::DiskFormat => optional_text(&mut out, image.disk_format.map(|d| d.as_str())),
        SortKey::ContainerFormat => optional_text(&mut out, image.container_format.map(|c| c.as_str())),
        SortKey::Size => out.extend_from_slice(&image.size.to_be_bytes()),
        SortKey::UpdatedAt => out.extend_from_slice(&timestamp(image.updated_at)),
    }
    out
}

/// Microseconds with the sign bit flipped, big-endian: negative times sort first.
fn timestamp(t: Timestamp) -> [u8; 8] {
    ((t.unix_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

/// `None` sorts before every `Some`, as `Option`'s order has it.
fn optional_text(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            text(out, s);
        }
    }
}

/// The UTF-8 bytes (whose order is `str`'s order) with each NUL escaped as `00 ff`, ended
/// by `00 00`: a string that is a prefix of another ends with `00 00`, which sorts before
/// whatever the longer one has there (`00 ff` or a byte above `00`).
fn text(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

#[cfg(test)]
mod tests {
    use tank_sdk::image::{
        query::{ListQuery, SortDir, Viewer},
        ContainerFormat, DiskFormat, Status,
    };

    use super::*;

    /// Images whose sort values tie, nest as prefixes, hold NULs, are unset, are negative
    /// or at the ends of their ranges.
    fn images() -> Vec<Image> {
        let names =
            [None, Some(""), Some("a"), Some("a\0"), Some("a\0b"), Some("a\u{1}"), Some("ab"), Some("b"), Some("é")];
        let micros = [i64::MIN / 2, -1, 0, 1, 1_700_000_000_000_000];
        let mut out = Vec::new();
        for n in 0..120usize {
            let mut i = Image::new(ImageId::random(), Timestamp::from_unix_micros(micros[n % micros.len()]));
            i.name = names[n % names.len()].map(String::from);
            i.status = Status::KNOWN[n % Status::KNOWN.len()].clone();
            i.disk_format = (n % 4 != 0).then(|| DiskFormat::ALL[n % DiskFormat::ALL.len()]);
            i.container_format = (n % 3 != 0).then(|| ContainerFormat::ALL[n % ContainerFormat::ALL.len()]);
            i.size = [0, 1, 255, 256, u64::MAX][n % 5];
            i.updated_at = Timestamp::from_unix_micros(micros[(n / 2) % micros.len()]);
            out.push(i);
        }
        out
    }

    #[test]
    fn byte_order_is_the_list_order_for_every_key() {
        let images = images();
        for (key, _) in INDEXED.into_iter().chain([(SortKey::Id, "records")]) {
            let q = ListQuery { sort_key: key, sort_dir: SortDir::Asc, ..ListQuery::new(Viewer::admin()) };
            for a in &images {
                for b in &images {
                    let (ka, kb) = (entry(key, a), entry(key, b));
                    assert_eq!(ka.cmp(&kb), q.compare(a, b), "{key:?}: {a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn the_id_is_at_the_end_and_status_keys_share_a_prefix() {
        let image = &images()[7];
        for (key, _) in INDEXED {
            assert_eq!(id_of(&entry(key, image)), Some(image.id));
        }
        assert!(entry(SortKey::Status, image).starts_with(&status_prefix(&image.status)));
        assert_eq!(id_of(b"short"), None);
    }
}
