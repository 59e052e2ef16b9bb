//! `tank plugins pack`: turns a built library and its source manifest into an installable
//! plugin folder, recording the two facts only the build knows, the target triple and the
//! library's sha256.

use std::{
    fs::{self, File},
    io::Write,
    os::unix::fs::PermissionsExt,
    path::Path,
};

use anyhow::{bail, Context};

use super::{
    loader::sha256,
    manifest::{Manifest, FILE_NAME},
};

/// Packs `library` with `manifest` into folder `out` (created or replaced file by file).
pub fn pack(manifest: &Path, library: &Path, out: &Path) -> anyhow::Result<()> {
    let mut m = Manifest::read_file(manifest).map_err(|r| anyhow::anyhow!(r.reason))?;
    m.check(false).map_err(|r| anyhow::anyhow!(r.reason))?;
    if !library.is_file() {
        bail!("library {} does not exist; build the plugin first (cargo build --release)", library.display());
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    // Copy to a temporary name and rename, so a running host never sees half a library.
    let lib_dest = out.join(&m.library.file);
    let tmp = out.join(format!(".{}.tmp", m.library.file));
    fs::copy(library, &tmp).with_context(|| format!("cannot copy {} to {}", library.display(), tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    let mut copied = File::open(&tmp)?;
    m.library.sha256 = sha256(&mut copied)?;
    m.abi.target = tank_sdk::TARGET.to_owned();
    fs::rename(&tmp, &lib_dest).with_context(|| format!("cannot write {}", lib_dest.display()))?;

    let text = format!(
        "# Packed by `tank plugins pack` from {}; abi.target and library.sha256 describe the library beside it.\n{}",
        manifest.display(),
        toml::to_string(&m).context("cannot encode the manifest")?
    );
    let manifest_tmp = out.join(format!(".{FILE_NAME}.tmp"));
    let mut f = File::create(&manifest_tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::set_permissions(&manifest_tmp, fs::Permissions::from_mode(0o644))?;
    fs::rename(&manifest_tmp, out.join(FILE_NAME))?;
    Ok(())
}
