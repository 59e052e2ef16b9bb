//! What the client verbs print for people: aligned tables, image blocks in the seed
//! `glance` tool's shape, human sizes, progress bars, and the `--json` writer.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tank_client::Image;

/// Writes `value` as pretty JSON and a newline to standard output.
pub fn json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `1234567 (1.18 MiB)` for people; bytes below 1 KiB are shown once.
pub fn size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{} ({bytes} bytes)", HumanBytes(bytes))
    }
}

/// `1.18 MiB`: for table columns.
pub fn human(bytes: u64) -> String {
    HumanBytes(bytes).to_string()
}

/// An optional text, `-` when absent.
pub fn or_dash(text: Option<&str>) -> &str {
    text.filter(|t| !t.is_empty()).unwrap_or("-")
}

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&mut header.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// One image as a block of `Label: value` lines, as the seed `glance show` printed it.
pub fn image_block(out: &mut impl Write, uri: &str, image: &Image) -> std::io::Result<()> {
    let yes_no = |b: bool| if b { "Yes" } else { "No" };
    writeln!(out, "URI: {uri}")?;
    writeln!(out, "Id: {}", image.id)?;
    writeln!(out, "Public: {}", yes_no(image.is_public))?;
    writeln!(out, "Protected: {}", yes_no(image.protected))?;
    writeln!(out, "Name: {}", or_dash(image.name.as_deref()))?;
    writeln!(out, "Status: {}", image.status)?;
    writeln!(out, "Size: {}", size(image.size))?;
    writeln!(out, "Disk format: {}", or_dash(image.disk_format.as_deref()))?;
    writeln!(out, "Container format: {}", or_dash(image.container_format.as_deref()))?;
    writeln!(out, "Minimum RAM required (MB): {}", image.min_ram)?;
    writeln!(out, "Minimum disk required (GB): {}", image.min_disk)?;
    writeln!(out, "Owner: {}", or_dash(image.owner.as_deref()))?;
    writeln!(out, "Checksum: {}", or_dash(image.checksum.as_deref()))?;
    // What only v2 tells.
    if let Some(visibility) = &image.visibility {
        writeln!(out, "Visibility: {visibility}")?;
    }
    if let (Some(algo), Some(hash)) = (&image.os_hash_algo, &image.os_hash_value) {
        writeln!(out, "Hash ({algo}): {hash}")?;
    }
    if !image.stores.is_empty() {
        writeln!(out, "Stores: {}", image.stores.join(", "))?;
    }
    if !image.tags.is_empty() {
        writeln!(out, "Tags: {}", image.tags.join(", "))?;
    }
    writeln!(out, "Created at: {}", image.created_at)?;
    writeln!(out, "Updated at: {}", image.updated_at)?;
    for (key, value) in &image.properties {
        writeln!(out, "Property '{key}': {value}")?;
    }
    Ok(())
}

/// A one-line summary of an image after a change: name, status, size, checksum.
pub fn summary(image: &Image) -> String {
    let mut text = format!("name {}, status {}", or_dash(image.name.as_deref()), image.status);
    if image.status == "active" || image.size > 0 {
        text.push_str(&format!(", size {}", size(image.size)));
    }
    if let Some(sum) = &image.checksum {
        text.push_str(&format!(", checksum {sum}"));
    }
    text
}

/// A progress bar on standard error for `what` (`uploading`, `downloading`) of `total`
/// bytes (a spinner with the count when unknown), with rate and time left. Hidden unless
/// standard error is a terminal, so that scripts and logs get no control characters.
pub fn progress(what: &str, total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} {spinner} {binary_bytes} {binary_bytes_per_sec}, {elapsed}")
                .expect("the template is valid"),
        ),
    };
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_sizes_read_well() {
        let mut out = Vec::new();
        table(&mut out, &["ID", "NAME", "SIZE"], &[vec!["a".into(), "longer name".into(), "1 B".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "ID  NAME         SIZE\na   longer name  1 B\n");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1 << 30), "1.00 GiB (1073741824 bytes)");
    }
}
