//! The loader: from plugin folders to checked, loaded root modules.
//!
//! Every plugin goes through the same gates, in this order, and the first it fails is its
//! status in `tank plugins`:
//!
//! 1. the manifest parses and passes [`Manifest::check`] (generation, target, names);
//! 2. its name and schemes are not taken by a plugin found earlier;
//! 3. the library exists and is not writable by other users;
//! 4. its sha256, read from the open file, equals the manifest's;
//! 5. `dlopen` of *that same open file* (through `/proc/self/fd`, so the bytes hashed are the
//!    bytes mapped) finds abi_stable's header;
//! 6. abi_stable's version and layout checks pass for the manifest's kind;
//! 7. the library's own `info()` agrees with the manifest's name.
//!
//! A plugin that fails is reported and skipped; nothing here can stop the host. Libraries
//! are never unloaded: abi_stable hands out `'static` references into them.

use std::{
    collections::HashMap,
    fs::File,
    io::Read,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use abi_stable::library::{lib_header_from_path, LibraryError};
use sha2::{Digest, Sha256};
use tank_sdk::abi::{HostV1, RegistryModV1_Ref, StoreModV1_Ref};

use super::{
    host_log,
    manifest::{Kind, Manifest, Refusal, StoreSection, FILE_NAME},
};

/// A plugin's root module, once loaded.
#[derive(Clone, Copy)]
pub enum Module {
    /// A store plugin, generation 1.
    Store(StoreModV1_Ref),
    /// A registry-driver plugin, generation 1.
    Registry(RegistryModV1_Ref),
}

/// One plugin folder as found, and how far it got.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The plugin's name (the folder's name when the manifest is unreadable).
    pub name: String,
    /// `store` or `registry`, when the manifest says.
    pub kind: Option<&'static str>,
    /// The plugin's version, when the manifest says.
    pub version: Option<String>,
    /// The ABI generation the manifest claims.
    pub generation: Option<u32>,
    /// The URI schemes a store owns.
    pub schemes: Vec<String>,
    /// `ok`, or the code of the gate it failed.
    pub status: &'static str,
    /// What failed and what to do; `None` when ok.
    pub reason: Option<String>,
    /// The plugin's folder.
    pub path: PathBuf,
    /// A store's `[store]` table: its aliases and options.
    #[serde(skip)]
    pub store: StoreSection,
}

impl Entry {
    /// Whether the plugin passed every gate that was run.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    fn refuse(&mut self, r: Refusal) {
        self.status = r.code;
        self.reason = Some(r.reason);
    }
}

/// Every plugin found in the plugin folders, with the modules of those that loaded.
#[derive(Default)]
pub struct Catalog {
    /// One entry per plugin folder, in scan order.
    pub entries: Vec<Entry>,
    modules: HashMap<String, Module>,
}

/// How far [`scan`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Manifests and files only: never opens a library.
    Manifests,
    /// Also hashes and loads every library.
    Load,
}

impl Catalog {
    /// The loaded module of plugin `name` (by name only, not alias).
    pub fn module(&self, name: &str) -> Option<Module> {
        self.modules.get(name).copied()
    }

    /// The entry a store is known by: its plugin name or one of its aliases.
    pub fn store_entry(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.kind == Some("store"))
            .find(|e| e.name == name || e.store.aliases.iter().any(|a| a == name))
    }

    /// The entry of registry driver `name`.
    pub fn registry_entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.kind == Some("registry") && e.name == name)
    }

    /// Marks plugin `name` as failed (e.g. its `open` failed after loading).
    pub fn fail(&mut self, name: &str, code: &'static str, reason: String) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.name == name) {
            e.refuse(Refusal { code, reason });
        }
        self.modules.remove(name);
    }
}

/// Scans `dirs` (each a folder of plugin folders) to `depth`. `max_level` is the most
/// verbose log level plugins may send (1 error … 5 trace).
pub fn scan(dirs: &[PathBuf], depth: Depth, max_level: u8) -> Catalog {
    let mut catalog = Catalog::default();
    let mut owners: HashMap<String, String> = HashMap::new();
    for dir in dirs {
        let Ok(read) = std::fs::read_dir(dir) else {
            tracing::warn!(dir = %dir.display(), "plugin dir cannot be read; skipping it");
            continue;
        };
        let mut folders: Vec<PathBuf> =
            read.filter_map(|d| d.ok()).map(|d| d.path()).filter(|p| p.join(FILE_NAME).is_file()).collect();
        folders.sort();
        for folder in folders {
            let mut entry = Entry {
                name: folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                kind: None,
                version: None,
                generation: None,
                schemes: Vec::new(),
                status: "ok",
                reason: None,
                path: folder.clone(),
                store: StoreSection::default(),
            };
            match Manifest::read(&folder) {
                Err(r) => entry.refuse(r),
                Ok(m) => {
                    entry.name.clone_from(&m.plugin.name);
                    entry.kind = Some(m.plugin.kind.as_str());
                    entry.version = Some(m.plugin.version.clone());
                    entry.generation = Some(m.abi.generation);
                    entry.schemes = m.schemes().to_vec();
                    entry.store = m.store.clone().unwrap_or_default();
                    let result = m
                        .check(true)
                        .and_then(|()| claim(&m, &folder, &mut owners))
                        .and_then(|()| check_library(&m, &folder, depth, max_level));
                    match result {
                        Ok(Some(module)) => {
                            catalog.modules.insert(m.plugin.name.clone(), module);
                        }
                        Ok(None) => {}
                        Err(r) => entry.refuse(r),
                    }
                }
            }
            if !entry.is_ok() {
                tracing::warn!(plugin = %entry.name, path = %entry.path.display(), status = entry.status,
                    "plugin skipped: {}", entry.reason.as_deref().unwrap_or(""));
            }
            catalog.entries.push(entry);
        }
    }
    catalog
}

/// Records the plugin's names and schemes, refusing any already claimed. A store's names
/// and schemes share one namespace with registry names only where they would be confused:
/// plugin names are unique across kinds, schemes among stores.
fn claim(m: &Manifest, folder: &Path, owners: &mut HashMap<String, String>) -> Result<(), Refusal> {
    let mut keys: Vec<String> = m.names().iter().map(|n| format!("name {n:?}")).collect();
    keys.extend(m.schemes().iter().map(|s| format!("scheme {s:?}")));
    for key in &keys {
        if let Some(other) = owners.get(key) {
            return Err(Refusal::new(
                "duplicate",
                format!(
                    "plugin '{}' claims {key}, already taken by the plugin in {other}; remove one of the two folders",
                    m.plugin.name
                ),
            ));
        }
    }
    for key in keys {
        owners.insert(key, folder.display().to_string());
    }
    Ok(())
}

fn check_library(m: &Manifest, folder: &Path, depth: Depth, max_level: u8) -> Result<Option<Module>, Refusal> {
    let name = &m.plugin.name;
    let path = m.library_path(folder);
    let mut file = File::open(&path).map_err(|e| {
        Refusal::new(
            "missing-library",
            format!("plugin '{name}': cannot open library {}: {e}; reinstall the plugin folder", path.display()),
        )
    })?;
    let meta = file.metadata().map_err(|e| Refusal::new("missing-library", format!("{}: {e}", path.display())))?;
    check_permissions(name, &path, &meta)?;
    if depth == Depth::Manifests {
        return Ok(None);
    }
    let actual = sha256(&mut file).map_err(|e| {
        Refusal::new("missing-library", format!("plugin '{name}': cannot read {}: {e}", path.display()))
    })?;
    if !actual.eq_ignore_ascii_case(&m.library.sha256) {
        return Err(Refusal::new(
            "hash-mismatch",
            format!(
                "plugin '{name}': library {} has sha256 {}…, the manifest says {}…; the file was changed after packing: reinstall or re-pack it",
                m.library.file,
                &actual[..12],
                m.library.sha256.get(..12).unwrap_or(&m.library.sha256)
            ),
        ));
    }
    // Load the file we just hashed, not whatever the path names by now.
    use std::os::fd::AsRawFd;
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    let header = lib_header_from_path(&fd_path).map_err(|e| match e {
        LibraryError::GetSymbolError { .. } => Refusal::new(
            "not-a-plugin",
            format!("plugin '{name}': {} is a shared library but not a Tank plugin (no abi_stable root module); build it with tank_sdk::export_store! or export_registry!", m.library.file),
        ),
        other => Refusal::new(
            "load-failed",
            format!("plugin '{name}': cannot load {}: {}", m.library.file, one_line(&other.to_string())),
        ),
    })?;
    // glibc knows the library by the name it was opened under, `/proc/self/fd/<n>`. Were
    // the descriptor closed, the next plugin's file could get the same number, and
    // `dlopen` would hand back this library instead of loading that one. A library that
    // got this far stays mapped (abi_stable never unloads), so its descriptor stays open
    // with it, whatever the checks below decide.
    let _ = std::os::fd::IntoRawFd::into_raw_fd(file);
    let host = HostV1 { log: host_log::log, max_level };
    let (module, info) = match m.plugin.kind {
        Kind::Store => {
            let module = header
                .init_root_module::<StoreModV1_Ref>()
                .map_err(|e| layout_refusal(name, "store", header.ensure_layout::<RegistryModV1_Ref>().is_ok(), e))?;
            (module.init())(host);
            (Module::Store(module), (module.info())())
        }
        Kind::Registry => {
            let module = header
                .init_root_module::<RegistryModV1_Ref>()
                .map_err(|e| layout_refusal(name, "registry", header.ensure_layout::<StoreModV1_Ref>().is_ok(), e))?;
            (module.init())(host);
            (Module::Registry(module), (module.info())())
        }
    };
    if info.name.as_str() != name {
        return Err(Refusal::new(
            "name-mismatch",
            format!(
                "the library in folder '{}' calls itself '{}', the manifest says '{name}'; fix plugin.name or the export_store!/export_registry! name",
                folder.display(),
                info.name
            ),
        ));
    }
    if m.plugin.kind == Kind::Registry && !keeps_unknown_fields(info.sdk_version.as_str()) {
        return Err(Refusal::new(
            "sdk-too-old",
            format!(
                "registry driver '{name}' was built with tank-sdk {}, which drops the record fields it does not \
                 know (visibility, tags, member statuses, locations) and would lose them; rebuild it against \
                 tank-sdk {REGISTRY_SDK_MIN} or later",
                info.sdk_version
            ),
        ));
    }
    tracing::debug!(plugin = %name, version = %info.version, sdk = %info.sdk_version, "plugin loaded");
    Ok(Some(module))
}

/// The first tank-sdk whose registry drivers keep record fields and statuses they do not
/// know, and refuse list queries they cannot answer.
const REGISTRY_SDK_MIN: &str = "1.1.0";

/// Whether a driver built with tank-sdk `version` keeps what it does not know: 1.1.0 and
/// later. A version that does not parse is a library that does not say, and is refused.
fn keeps_unknown_fields(version: &str) -> bool {
    let parts: Vec<u64> = version.split(['.', '-', '+']).take(2).map_while(|p| p.parse().ok()).collect();
    matches!(parts.as_slice(), [major, minor] if (*major, *minor) >= (1, 1))
}

fn layout_refusal(name: &str, kind: &str, other_kind_fits: bool, e: LibraryError) -> Refusal {
    if other_kind_fits {
        let other = if kind == "store" { "registry" } else { "store" };
        return Refusal::new(
            "kind-mismatch",
            format!("plugin '{name}': the manifest says kind = \"{kind}\" but the library is a {other} plugin; fix plugin.kind"),
        );
    }
    match e {
        LibraryError::IncompatibleVersionNumber { .. } | LibraryError::AbiInstability(_) => Refusal::new(
            "abi-unsupported",
            format!(
                "plugin '{name}' does not match this host's ABI generation {}: {}; rebuild it against this tank-sdk",
                tank_sdk::GENERATION,
                one_line(&e.to_string())
            ),
        ),
        other => Refusal::new("load-failed", format!("plugin '{name}': {}", one_line(&other.to_string()))),
    }
}

/// A library other users can write to could be swapped under us; refuse it, as ssh refuses
/// a group- or world-writable key file.
fn check_permissions(name: &str, path: &Path, meta: &std::fs::Metadata) -> Result<(), Refusal> {
    let mode = meta.permissions().mode();
    let ours = meta.uid() == 0 || meta.uid() == current_uid();
    if mode & 0o022 != 0 || !ours {
        return Err(Refusal::new(
            "unsafe-permissions",
            format!(
                "plugin '{name}': {} is writable by group or others, or owned by another user (mode {:o}, uid {}); chmod go-w it and chown it to root or the tank user",
                path.display(),
                mode & 0o7777,
                meta.uid()
            ),
        ));
    }
    Ok(())
}

fn current_uid() -> u32 {
    // The owner of /proc/self is the process's effective uid: no libc call needed.
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

/// The lowercase hex sha256 of everything `file` holds.
pub fn sha256(file: &mut File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod sdk_tests {
    use super::keeps_unknown_fields;

    #[test]
    fn registry_drivers_need_a_sdk_that_keeps_unknown_fields() {
        for old in ["1.0.0", "0.9.3", "garbage", ""] {
            assert!(!keeps_unknown_fields(old), "{old}");
        }
        for new in ["1.1.0", "1.1.0-rc.1", "1.12.3", "2.0.0", super::REGISTRY_SDK_MIN] {
            assert!(keeps_unknown_fields(new), "{new}");
        }
    }
}
