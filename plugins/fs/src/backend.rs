//! The fs store's operations.

use std::{
    fs::{self, File},
    io::{self, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use tank_sdk::{Error, OpenContext, Reader, Result, Store, Writer};

use crate::{config::Config, error, writer::FsWriter};

const PARTIAL: &str = ".partial";

/// Images as files in one directory.
#[derive(Debug)]
pub struct FsStore {
    datadir: PathBuf,
    direct_io: bool,
}

impl FsStore {
    fn file_of(&self, image_id: &str) -> Result<PathBuf> {
        let ok = image_id.len() == 36 && image_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !ok {
            return Err(error::bad_image_id(image_id));
        }
        Ok(self.datadir.join(image_id))
    }

    /// The file a location names, if it is an image file of this store.
    fn path_of(&self, location: &str) -> Result<PathBuf> {
        let rest = location
            .strip_prefix("file://")
            .or_else(|| location.strip_prefix("filesystem://"))
            .ok_or_else(|| error::foreign_location(location, "the scheme must be file://"))?;
        let path = Path::new(rest);
        let parent = path.parent().ok_or_else(|| error::foreign_location(location, "no directory"))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| error::foreign_location(location, "no file name"))?;
        // Compare the directory as given, not canonicalised: the store writes only
        // `<datadir>/<uuid>` and a location naming anything else was not made here.
        if parent != self.datadir {
            return Err(error::foreign_location(location, "it is outside the store's datadir"));
        }
        self.file_of(name).map_err(|_| error::foreign_location(location, "it names no image file"))
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
        let store = FsStore { datadir, direct_io: config.direct_io };
        store.check()?;
        tracing::debug!(datadir = %store.datadir.display(), "fs store opened");
        Ok(store)
    }

    fn add(&self, image_id: &str, _size: Option<u64>) -> Result<Box<dyn Writer>> {
        let target = self.file_of(image_id)?;
        if target.exists() {
            return Err(Error::duplicate(format!("image {image_id} already has data in {}", self.datadir.display())));
        }
        let partial = self.datadir.join(format!("{image_id}{PARTIAL}"));
        Ok(Box::new(FsWriter::create(partial, target, self.datadir.clone(), self.direct_io)?))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let path = self.path_of(location)?;
        let mut file = File::open(&path).map_err(|e| not_found_or(e, format!("opening {}", path.display())))?;
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
        fs::metadata(&path).map(|m| m.len()).map_err(|e| not_found_or(e, format!("reading {}", path.display())))
    }

    fn delete(&self, location: &str) -> Result<()> {
        let path = self.path_of(location)?;
        fs::remove_file(&path).map_err(|e| not_found_or(e, format!("removing {}", path.display())))?;
        sync_dir(&self.datadir)
    }

    fn discard(&self, image_id: &str) -> Result<()> {
        self.file_of(image_id)?;
        let partial = self.datadir.join(format!("{image_id}{PARTIAL}"));
        match fs::remove_file(&partial) {
            Ok(()) => sync_dir(&self.datadir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", partial.display()), e)),
        }
    }

    fn check(&self) -> Result<()> {
        // Writable and listable, or it is no use as a store.
        let probe = self.datadir.join(".tank-probe");
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| Error::io(format!("writing in datadir {}", self.datadir.display()), e))
    }
}
