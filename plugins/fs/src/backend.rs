//! The fs store's operations.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use tank_sdk::{Error, OpenContext, Reader, Result, Store, Writer};

use crate::{config::Config, error};

const PARTIAL: &str = ".partial";

/// Images as files in one directory.
#[derive(Debug)]
pub struct FsStore {
    datadir: PathBuf,
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

fn sync_dir(dir: &Path) -> Result<()> {
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
        let store = FsStore { datadir };
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
        // A leftover .partial from an earlier attempt is replaced: its upload is over.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&partial)
            .map_err(|e| Error::io(format!("creating {}", partial.display()), e))?;
        Ok(Box::new(FsWriter { file, partial, target, datadir: self.datadir.clone() }))
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

/// An upload into `<id>.partial`.
struct FsWriter {
    file: File,
    partial: PathBuf,
    target: PathBuf,
    datadir: PathBuf,
}

impl Writer for FsWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file.write_all(data).map_err(|e| Error::io(format!("writing {}", self.partial.display()), e))
    }

    fn finish(self: Box<Self>) -> Result<String> {
        let FsWriter { file, partial, target, datadir } = *self;
        let result = (|| {
            file.sync_all().map_err(|e| Error::io(format!("syncing {}", partial.display()), e))?;
            drop(file);
            if target.exists() {
                return Err(Error::duplicate(format!("image data {} appeared during the upload", target.display())));
            }
            fs::rename(&partial, &target)
                .map_err(|e| Error::io(format!("renaming {} into place", partial.display()), e))?;
            sync_dir(&datadir)
        })();
        match result {
            Ok(()) => Ok(format!("file://{}", target.display())),
            Err(e) => {
                let _ = fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    fn abort(self: Box<Self>) -> Result<()> {
        drop(self.file);
        match fs::remove_file(&self.partial) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", self.partial.display()), e)),
        }
    }
}
