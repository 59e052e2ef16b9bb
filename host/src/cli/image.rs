//! `tank image`: the seed `glance` tool's image verbs (add, update, delete, show, index,
//! details, clear) and download, over `tank-client`.

use std::{
    io::{BufRead, IsTerminal, Write},
    os::{fd::AsFd, unix::fs::FileTypeExt},
    path::{Path, PathBuf},
};

use clap::{Args, Subcommand};
use serde_json::json;
use tank_client::{Client, Image, ImageMeta, ListQuery, Upload};

use super::{
    exit::{bad_input, client_error},
    output, runtime, Connection,
};

/// `tank image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    verb: ImageVerb,
}

/// The image verbs.
#[derive(Debug, Subcommand)]
enum ImageVerb {
    /// Add a new image: upload its data, register where it is, have the server copy it, or
    /// just reserve it.
    ///
    /// Fields are key=value words: id, name, disk_format, container_format, size,
    /// checksum, is_public, visibility (v2), protected, min_ram, min_disk, owner, store.
    /// copy_from=URL makes the server fetch the data (over v2, a web-download import that
    /// the command waits for); location=URL registers data that stays where it is (v1
    /// only). Any other key is a custom property. Over v2, size, checksum and store go
    /// with the data.
    ///
    /// The data comes from --file PATH, or from standard input when it is a file or a pipe
    /// (`< disk.img`, `cat disk.img |`); --file - reads standard input whatever it is.
    /// Without data, location or copy_from the image is reserved (status queued) and its
    /// data can be uploaded later with `tank image update ID --file PATH`.
    #[command(after_help = "\
Examples:
  tank image add name=cirros disk_format=qcow2 container_format=bare --file cirros.img
  xzcat debian.raw.xz | tank image add name=debian disk_format=raw container_format=bare os_distro=debian
  tank image add name=remote disk_format=qcow2 container_format=bare copy_from=http://mirror.example.com/x.qcow2
  tank image add name=later disk_format=raw container_format=bare     (reserve, upload later)")]
    Add {
        /// Fields and properties, KEY=VALUE.
        #[arg(value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// Upload the data from this file (`-`: standard input).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Change an image's fields and properties, or upload the data of a queued image.
    ///
    /// Properties not named are kept, unless --purge-props. Fields as for `add`.
    #[command(after_help = "\
Examples:
  tank image update 71c6d9d2-... name=cirros-0.6 is_public=true os_version=0.6
  tank image update 71c6d9d2-... --file cirros.img        (data for a queued image)
  tank image update 71c6d9d2-... --purge-props os_distro=cirros")]
    Update {
        /// The image's id.
        id: String,
        /// Fields and properties, KEY=VALUE.
        #[arg(value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// Upload the data from this file (`-`: standard input); the image must be queued.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Replace all properties with the ones given (Glance's default), instead of
        /// keeping those not named.
        #[arg(long)]
        purge_props: bool,
    },
    /// Delete an image (and its data).
    #[command(after_help = "Example:\n  tank image delete 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60")]
    Delete {
        /// The image's id.
        id: String,
    },
    /// Show one image's metadata.
    #[command(after_help = "Example:\n  tank image show 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 --json")]
    Show {
        /// The image's id.
        id: String,
    },
    /// List images in a table: id, name, formats, size.
    ///
    /// Filters are key=value words: name, status, disk_format, container_format,
    /// size_min, size_max, min_ram, min_disk, is_public (true, false or none),
    /// protected, changes-since; any other key filters on a custom property. Every image
    /// you may see is listed (is_public=none) unless you filter on is_public.
    #[command(after_help = "\
Examples:
  tank image index
  tank image index disk_format=qcow2 size_max=1073741824 --sort-key size --sort-dir asc
  tank image index os_distro=debian --limit 10 --json")]
    Index(ListArgs),
    /// List images with all their metadata, as blocks of `Label: value` lines.
    ///
    /// Filters, sorting and paging as for `index`.
    #[command(after_help = "Example:\n  tank image details status=active --limit 5")]
    Details(ListArgs),
    /// Delete every image you may see, except protected ones.
    ///
    /// Asks for confirmation on standard input (`y` to go on) unless --yes.
    #[command(after_help = "Examples:\n  tank image clear\n  tank image clear --yes --json")]
    Clear {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Download an image's data, checked against its size and checksum on the way.
    ///
    /// With --file the data is written to a temporary file beside PATH and renamed to
    /// PATH only once the checksum matches; without, it goes to standard output (not
    /// when that is a terminal).
    #[command(after_help = "\
Examples:
  tank image download 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 --file cirros.img
  tank image download 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 | qemu-img info /dev/stdin")]
    Download {
        /// The image's id.
        id: String,
        /// Write the data to this file instead of standard output.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
}

/// Filters, sort and paging of `index` and `details`.
#[derive(Debug, Args)]
struct ListArgs {
    /// Filters, KEY=VALUE.
    #[arg(value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// List at most this many images (default: all, fetched page by page).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Start after the image with this id (the last id of the previous page).
    #[arg(long, value_name = "ID")]
    marker: Option<String>,
    /// Sort by id, name, status, disk_format, container_format, size, created_at
    /// (default) or updated_at.
    #[arg(long, alias = "sort_key", value_name = "KEY")]
    sort_key: Option<String>,
    /// Sort direction.
    #[arg(long, alias = "sort_dir", value_parser = ["asc", "desc"], value_name = "DIR")]
    sort_dir: Option<String>,
}

/// The filter names the API knows; any other key is a custom property.
const FILTERS: &[&str] = &[
    "name",
    "status",
    "disk_format",
    "container_format",
    "size_min",
    "size_max",
    "min_ram",
    "min_disk",
    "is_public",
    "protected",
    "changes-since",
];

/// The largest page asked for; the server may cap it lower (`api_limit_max`).
const PAGE: u32 = 1000;

/// Runs `tank image <verb>`.
pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    let client = args.conn.client()?;
    let json = args.conn.json;
    runtime()?.block_on(async move {
        match args.verb {
            ImageVerb::Add { fields, file } => add(&client, json, &fields, file.as_deref()).await,
            ImageVerb::Update { id, fields, file, purge_props } => {
                update(&client, json, &id, &fields, file.as_deref(), purge_props).await
            }
            ImageVerb::Delete { id } => delete(&client, json, &id).await,
            ImageVerb::Show { id } => show(&client, json, &id).await,
            ImageVerb::Index(list) => index(&client, json, &list).await,
            ImageVerb::Details(list) => details(&client, json, &list).await,
            ImageVerb::Clear { yes } => clear(&client, json, yes).await,
            ImageVerb::Download { id, file } => download(&client, json, &id, file.as_deref()).await,
        }
    })
}

/// Splits `key=value` words.
fn pairs(words: &[String]) -> anyhow::Result<Vec<(&str, &str)>> {
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k, v)),
            _ => {
                Err(bad_input(format!("{w:?} is not KEY=VALUE; write fields as name=cirros, filters as status=active")))
            }
        })
        .collect()
}

fn meta_of(words: &[String]) -> anyhow::Result<ImageMeta> {
    let mut meta = ImageMeta::new();
    for (k, v) in pairs(words)? {
        meta.set(k, v);
    }
    Ok(meta)
}

/// The data to upload: `--file`, or standard input when it is a file, pipe or socket and
/// the image gets its data no other way.
async fn data_source(file: Option<&Path>, meta: &ImageMeta) -> anyhow::Result<Option<Upload>> {
    let elsewhere = meta.location.is_some() || meta.copy_from.is_some();
    match file {
        Some(_) if elsewhere => {
            Err(bad_input("--file and location= or copy_from= both give the data; give one of them"))
        }
        Some(p) if p == Path::new("-") => Ok(Some(stdin_upload()?)),
        Some(p) => match Upload::file(p).await {
            Ok(u) => Ok(Some(u)),
            Err(e) => Err(bad_input(format!("{e}; check the path given to --file"))),
        },
        None if elsewhere => Ok(None),
        None => {
            let stdin = std::io::stdin();
            let kind = std::fs::File::from(stdin.as_fd().try_clone_to_owned()?).metadata().map(|m| m.file_type());
            match kind {
                Ok(t) if t.is_file() || t.is_fifo() || t.is_socket() => Ok(Some(stdin_upload()?)),
                // A terminal or /dev/null: nothing to upload, the image is reserved.
                _ => Ok(None),
            }
        }
    }
}

/// Standard input as upload data, with its size when it is a regular file.
fn stdin_upload() -> anyhow::Result<Upload> {
    let file = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let meta = file.metadata()?;
    let size = meta.is_file().then_some(meta.len());
    Ok(Upload::reader(tokio::fs::File::from_std(file), size))
}

/// Attaches a progress bar to an upload; returns the bar to finish.
fn with_progress(upload: Option<Upload>, json: bool) -> (Option<Upload>, Option<indicatif::ProgressBar>) {
    match upload {
        Some(u) if !json => {
            let bar = output::progress("uploading", u.size());
            let b = bar.clone();
            (Some(u.on_progress(move |n| b.set_position(n))), Some(bar))
        }
        other => (other, None),
    }
}

fn print_image_json(image: &Image) -> anyhow::Result<()> {
    output::json(&json!({ "image": image }))
}

async fn add(client: &Client, json: bool, fields: &[String], file: Option<&Path>) -> anyhow::Result<()> {
    let meta = meta_of(fields)?;
    let data = data_source(file, &meta).await?;
    let (data, bar) = with_progress(data, json);
    let result = client.create(&meta, data).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let image = result.map_err(|e| client_error("cannot add the image", e))?;
    if json {
        return print_image_json(&image);
    }
    println!("Added new image with ID: {}", image.id);
    println!("  {}", output::summary(&image));
    if image.status == "queued" {
        println!("  no data was given; upload it with `tank image update {} --file PATH`", image.id);
    }
    Ok(())
}

async fn update(
    client: &Client,
    json: bool,
    id: &str,
    fields: &[String],
    file: Option<&Path>,
    purge_props: bool,
) -> anyhow::Result<()> {
    let mut meta = meta_of(fields)?;
    meta.purge_properties = purge_props;
    // Only an explicit --file uploads on update: standard input is not read implicitly,
    // so a metadata change in a script never swallows what is piped to the script.
    let data = match file {
        Some(_) => data_source(file, &meta).await?,
        None => None,
    };
    let (data, bar) = with_progress(data, json);
    let result = client.update(id, &meta, data).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let image = result.map_err(|e| client_error(&format!("cannot update image {id}"), e))?;
    if json {
        return print_image_json(&image);
    }
    println!("Updated image {}", image.id);
    println!("  {}", output::summary(&image));
    Ok(())
}

async fn delete(client: &Client, json: bool, id: &str) -> anyhow::Result<()> {
    client.delete(id).await.map_err(|e| client_error(&format!("cannot delete image {id}"), e))?;
    if json {
        return output::json(&json!({ "deleted": [id] }));
    }
    println!("Deleted image {id}");
    Ok(())
}

async fn show(client: &Client, json: bool, id: &str) -> anyhow::Result<()> {
    let image = client.get(id).await.map_err(|e| client_error(&format!("cannot show image {id}"), e))?;
    if json {
        return print_image_json(&image);
    }
    output::image_block(&mut std::io::stdout().lock(), &client.image_url(&image.id), &image)?;
    Ok(())
}

/// The query of `index`/`details` without paging: filters (unknown keys become property
/// filters; every visible image unless is_public is given) and sort.
fn list_query(list: &ListArgs) -> anyhow::Result<ListQuery> {
    let mut q = ListQuery::new();
    let mut public_given = false;
    for (k, v) in pairs(&list.filters)? {
        // `-` and `_` are the same in names, as in fields; the API spells one filter
        // with a dash, and the server stores property keys with underscores.
        let key = match k.replace('-', "_").as_str() {
            "changes_since" => "changes-since".to_owned(),
            other => other.to_owned(),
        };
        if FILTERS.contains(&key.as_str()) {
            public_given |= key == "is_public";
            q = q.filter(&key, v);
        } else {
            let property = key.strip_prefix("property_").unwrap_or(&key);
            q = q.property(property, v);
        }
    }
    if !public_given {
        q = q.filter("is_public", "none");
    }
    q.sort_key = list.sort_key.clone();
    q.sort_dir = list.sort_dir.clone();
    Ok(q)
}

/// Fetches pages of `query` from `--marker` on, until `--limit` images or the end: a page
/// of fewer images than asked does not prove the end (the server may cap pages lower), so
/// the end is an empty page.
async fn all_pages<T, F, Fut>(list: &ListArgs, mut fetch: F, id: fn(&T) -> &str) -> anyhow::Result<Vec<T>>
where
    F: FnMut(ListQuery) -> Fut,
    Fut: std::future::Future<Output = tank_client::Result<Vec<T>>>,
{
    let base = list_query(list)?;
    let mut marker = list.marker.clone();
    let mut items = Vec::new();
    loop {
        let want = match list.limit {
            Some(limit) => limit.saturating_sub(items.len() as u32).min(PAGE),
            None => PAGE,
        };
        if want == 0 {
            return Ok(items);
        }
        let mut q = base.clone().limit(want);
        q.marker = marker.clone();
        let page = fetch(q).await.map_err(|e| client_error("cannot list images", e))?;
        let Some(last) = page.last() else { return Ok(items) };
        marker = Some(id(last).to_owned());
        items.extend(page);
    }
}

async fn index(client: &Client, json: bool, list: &ListArgs) -> anyhow::Result<()> {
    let images = all_pages(list, |q| async move { client.list(&q).await }, |i| &i.id).await?;
    if json {
        return output::json(&json!({ "images": images }));
    }
    if images.is_empty() {
        println!("No images found");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                output::or_dash(i.name.as_deref()).to_owned(),
                output::or_dash(i.disk_format.as_deref()).to_owned(),
                output::or_dash(i.container_format.as_deref()).to_owned(),
                output::human(i.size),
            ]
        })
        .collect();
    output::table(&mut std::io::stdout().lock(), &["ID", "NAME", "DISK FORMAT", "CONTAINER FORMAT", "SIZE"], &rows)?;
    Ok(())
}

async fn details(client: &Client, json: bool, list: &ListArgs) -> anyhow::Result<()> {
    let images = all_pages(list, |q| async move { client.list_detailed(&q).await }, |i| &i.id).await?;
    if json {
        return output::json(&json!({ "images": images }));
    }
    if images.is_empty() {
        println!("No images found");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for (n, image) in images.iter().enumerate() {
        if n > 0 {
            writeln!(out, "{}", "=".repeat(60))?;
        }
        output::image_block(&mut out, &client.image_url(&image.id), image)?;
    }
    Ok(())
}

/// Asks `question` on standard error and reads the answer from standard input; only
/// `y` or `yes` goes on.
fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

async fn clear(client: &Client, json: bool, yes: bool) -> anyhow::Result<()> {
    let all = ListArgs { filters: vec![], limit: None, marker: None, sort_key: None, sort_dir: None };
    let images = all_pages(&all, |q| async move { client.list_detailed(&q).await }, |i| &i.id).await?;
    let (protected, doomed): (Vec<Image>, Vec<Image>) = images.into_iter().partition(|i| i.protected);
    if !yes && !doomed.is_empty() {
        let question = format!(
            "Delete all {} images at {}{}?",
            doomed.len(),
            client.url(),
            if protected.is_empty() {
                String::new()
            } else {
                format!(" ({} protected ones are kept)", protected.len())
            }
        );
        let interactive = std::io::stdin().is_terminal();
        if !confirm(&question)? {
            let how = if interactive { "" } else { "; pass --yes to clear without asking" };
            return Err(bad_input(format!("nothing was deleted: the clear was not confirmed{how}")));
        }
    }
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for image in &doomed {
        match client.delete(&image.id).await {
            Ok(()) => deleted.push(image.id.clone()),
            // Deleted meanwhile by someone else: the goal is reached.
            Err(e) if e.kind() == tank_client::ErrorKind::NotFound => deleted.push(image.id.clone()),
            Err(e) => failed.push((image.id.clone(), e)),
        }
    }
    let kept: Vec<&str> = protected.iter().map(|i| i.id.as_str()).collect();
    if json {
        let failures: Vec<_> = failed.iter().map(|(id, e)| json!({"id": id, "error": e.to_string()})).collect();
        output::json(&json!({ "deleted": deleted, "protected": kept, "failed": failures }))?;
    } else {
        println!("Deleted {} images", deleted.len());
        if !kept.is_empty() {
            println!("Kept {} protected images: {}", kept.len(), kept.join(", "));
        }
    }
    match failed.into_iter().next() {
        None => Ok(()),
        Some((id, e)) => Err(client_error(&format!("cannot delete image {id} (and maybe others, see above)"), e)),
    }
}

async fn download(client: &Client, json: bool, id: &str, file: Option<&Path>) -> anyhow::Result<()> {
    if file.is_none() {
        if json {
            return Err(bad_input("--json needs --file PATH: without it the image data goes to standard output"));
        }
        if std::io::stdout().is_terminal() {
            return Err(bad_input(
                "refusing to write image data to a terminal; give --file PATH or redirect standard output",
            ));
        }
    }
    let what = format!("cannot download image {id}");
    let started = std::time::Instant::now();
    let download = client.download(id).await.map_err(|e| client_error(&what, e))?;
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        output::progress("downloading", Some(download.image().size))
    };
    let progress = |n| bar.set_position(n);
    let result = match file {
        Some(path) => download.save(path, progress).await,
        None => download.write_to(tokio::io::stdout(), progress).await,
    };
    bar.finish_and_clear();
    let image = result.map_err(|e| client_error(&what, e))?;
    let elapsed = started.elapsed();
    match (file, json) {
        (Some(path), true) => output::json(&json!({ "image": image, "file": path })),
        (Some(path), false) => {
            let checked = match &image.checksum {
                Some(sum) => format!("checksum {sum} verified"),
                None => "the image has no checksum to verify".to_owned(),
            };
            println!(
                "Downloaded image {} to {}: {} in {:.1} s, {checked}",
                image.id,
                path.display(),
                output::size(image.size),
                elapsed.as_secs_f64(),
            );
            Ok(())
        }
        (None, _) => Ok(()),
    }
}
