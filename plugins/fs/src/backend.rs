//! The fs store's operations: image ids and locations checked against the datadir, reads
//! that cannot leave it, and the datadir's own checks.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use tank_sdk::{image::ImageId, Error, OpenContext, Reader, Result, Store, Writer};

use crate::{config::Config, error, writer::FsWriter};

const PARTIAL: &str = ".partial";

/// Images as files in one directory.
#[derive(Debug)]
pub struct FsStore {
    /// Canonical (absolute, no symbolic links) and valid UTF-8, so that every location
    /// this store hands out is `file://` followed by exactly `<datadir>/<id>`.
    datadir: PathBuf,
    direct_io: bool,
}

impl FsStore {
    /// The file name of image `image_id`: its canonical UUID form. Parsing the id as a
    /// UUID is what keeps an id from naming anything outside the datadir (`../x`, `a/b`).
    fn name_of(image_id: &str) -> Result<String> {
        image_id.parse::<ImageId>().map(|id| id.to_string()).map_err(|_| error::bad_image_id(image_id))
    }

    /// The image file a location names, if it is one this store handed out.
    fn path_of(&self, location: &str) -> Result<PathBuf> {
        let rest = ["file://", "filesystem://"]
            .iter()
            .find_map(|scheme| {
                let head = location.get(..scheme.len())?;
                head.eq_ignore_ascii_case(scheme).then(|| &location[scheme.len()..])
            })
            .ok_or_else(|| error::foreign_location(location, "the scheme must be file:// or filesystem://"))?;
        let (dir, name) = rest.rsplit_once('/').ok_or_else(|| error::foreign_location(location, "no file name"))?;
        // The directory must be the datadir exactly as this store writes it, compared as
        // text: `..`, `.`, doubled slashes or another spelling of the same directory were
        // not made here, and refusing them means no location can walk out of the datadir.
        if self.datadir.to_str() != Some(dir) {
            return Err(error::foreign_location(location, "it is outside the store's datadir"));
        }
        match Self::name_of(name) {
            Ok(canonical) if canonical == name => Ok(self.datadir.join(name)),
            _ => Err(error::foreign_location(location, "it names no image file")),
        }
    }

    fn partial_of(&self, name: &str) -> PathBuf {
        self.datadir.join(format!("{name}{PARTIAL}"))
    }
}

/// Syncs a directory, so a rename or removal in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
}

fn not_found_or(e: io::Error, what: String) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::not_found(format!("{what}: no such image file"))
    } else {
        Error::io(what, e)
    }
}

impl Store for FsStore {
    fn open(ctx: &OpenContext) -> Result<Self> {
        let config: Config = ctx.config()?;
        let datadir = ctx.resolve(&config.datadir);
        fs::create_dir_all(&datadir).map_err(|e| Error::io(format!("creating datadir {}", datadir.display()), e))?;
        let datadir =
            datadir.canonicalize().map_err(|e| Error::io(format!("resolving datadir {}", datadir.display()), e))?;
        // Locations are text; a datadir whose path is not UTF-8 could not be named by one.
        if datadir.to_str().is_none() {
            return Err(Error::invalid_config(format!(
                "datadir {} is not valid UTF-8; choose a directory whose path is",
                datadir.display()
            )));
        }
        let store = FsStore { datadir, direct_io: config.direct_io };
        store.check()?;
        tracing::debug!(datadir = %store.datadir.display(), "fs store opened");
        Ok(store)
    }

    fn add(&self, image_id: &str, _size: Option<u64>) -> Result<Box<dyn Writer>> {
        let name = Self::name_of(image_id)?;
        let target = self.datadir.join(&name);
        if fs::symlink_metadata(&target).is_ok() {
            return Err(Error::duplicate(format!("image {image_id} already has data in {}", self.datadir.display())));
        }
        let partial = self.partial_of(&name);
        Ok(Box::new(FsWriter::create(partial, target, self.datadir.clone(), self.direct_io)?))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let path = self.path_of(location)?;
        // O_NOFOLLOW: a symbolic link planted in the datadir cannot lead a read out of it.
        // O_NONBLOCK: neither can a FIFO block the open; it changes nothing for files.
        let mut file =
            OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path).map_err(
                |e| match e.raw_os_error() {
                    Some(libc::ELOOP) => error::not_a_file(&path),
                    _ => not_found_or(e, format!("opening {}", path.display())),
                },
            )?;
        let meta = file.metadata().map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(error::not_a_file(&path));
        }
        if offset > 0 {
            file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
        }
        Ok(match length {
            Some(n) => Box::new(file.take(n)),
            None => Box::new(file),
        })
    }

    fn size(&self, location: &str) -> Result<u64> {
        let path = self.path_of(location)?;
        let meta = fs::symlink_metadata(&path).map_err(|e| not_found_or(e, format!("reading {}", path.display())))?;
        if !meta.is_file() {
            return Err(error::not_a_file(&path));
        }
        Ok(meta.len())
    }

    fn delete(&self, location: &str) -> Result<()> {
        let path = self.path_of(location)?;
        fs::remove_file(&path).map_err(|e| not_found_or(e, format!("removing {}", path.display())))?;
        sync_dir(&self.datadir)
    }

    fn discard(&self, image_id: &str) -> Result<()> {
        let partial = self.partial_of(&Self::name_of(image_id)?);
        match fs::remove_file(&partial) {
            Ok(()) => sync_dir(&self.datadir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", partial.display()), e)),
        }
    }

    fn check(&self) -> Result<()> {
        // Writable, or it is no use as a store. The probe's name is unique so that two
        // stores sharing a datadir (two aliases configured alike) cannot trip each other.
        let probe = self.datadir.join(format!(".tank-probe-{}", ImageId::random()));
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| Error::io(format!("writing in datadir {}", self.datadir.display()), e))
    }
}
