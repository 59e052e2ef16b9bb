//! How a plugin library exports itself: the root modules built from an author's type, the
//! panic guard around every entry point, and the macros [`crate::export_store!`] and
//! [`crate::export_registry!`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    library::{CheckTypeLayout, LibHeader, RootModuleResult},
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RBox, RResult, RStr},
};

use crate::{
    abi::{
        HostV1, PluginError, PluginInfoV1, RegistryModV1, RegistryModV1_Ref, RegistryV1_TO, StoreModV1, StoreModV1_Ref,
        StoreV1_TO,
    },
    registry::RegistryAdapter,
    store::{OpenContext, StoreAdapter},
    Error, ErrorKind, RegistryDriver, Result, Store,
};

/// The name and version the export macros attach to a plugin's type.
pub trait Meta {
    /// The plugin's name, as in its manifest.
    const NAME: &'static str;
    /// The plugin's own version.
    const VERSION: &'static str;
}

/// Runs `f`, turning a panic into an error of kind [`ErrorKind::PANICKED`] so that it never
/// unwinds into the host (abi_stable would end the whole process).
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text panic payload".to_owned());
            RResult::RErr(Error::new(ErrorKind::PANICKED, format!("the plugin panicked: {what}")).into())
        }
    }
}

fn info<M: Meta>(kind: &str) -> PluginInfoV1 {
    PluginInfoV1 {
        name: M::NAME.into(),
        version: M::VERSION.into(),
        kind: kind.into(),
        sdk_version: env!("CARGO_PKG_VERSION").into(),
    }
}

extern "C" fn store_info<S: Meta>() -> PluginInfoV1 {
    info::<S>("store")
}

extern "C" fn registry_info<R: Meta>() -> PluginInfoV1 {
    info::<R>("registry")
}

extern "C" fn init<M: Meta>(host: HostV1) {
    crate::log::install(M::NAME, host);
}

extern "C" fn open_store<S: Store + Meta>(
    name: RStr<'_>,
    config: RStr<'_>,
    dir: RStr<'_>,
) -> RResult<StoreV1_TO<'static, RBox<()>>, PluginError> {
    guard(|| {
        let ctx = OpenContext::from_abi(name, config, dir)?;
        let store = S::open(&ctx)?;
        Ok(StoreV1_TO::from_value(StoreAdapter(store), TD_Opaque))
    })
}

extern "C" fn open_registry<R: RegistryDriver + Meta>(
    name: RStr<'_>,
    config: RStr<'_>,
    dir: RStr<'_>,
) -> RResult<RegistryV1_TO<'static, RBox<()>>, PluginError> {
    guard(|| {
        let ctx = OpenContext::from_abi(name, config, dir)?;
        let driver = R::open(&ctx)?;
        Ok(RegistryV1_TO::from_value(RegistryAdapter(driver), TD_Opaque))
    })
}

fn store_root<S: Store + Meta>() -> StoreModV1_Ref {
    StoreModV1 { info: store_info::<S>, init: init::<S>, open: open_store::<S> }.leak_into_prefix()
}

fn registry_root<R: RegistryDriver + Meta>() -> RegistryModV1_Ref {
    RegistryModV1 { info: registry_info::<R>, init: init::<R>, open: open_registry::<R> }.leak_into_prefix()
}

extern "C" fn store_loader<S: Store + Meta>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(store_root::<S>)
}

extern "C" fn registry_loader<R: RegistryDriver + Meta>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(registry_root::<R>)
}

/// The library header of a store plugin: what `abi_stable` looks up after `dlopen`.
pub const fn store_header<S: Store + Meta>() -> LibHeader {
    // SAFETY: the constructor returns the prefix of a `StoreModV1`, the module type named.
    unsafe { LibHeader::from_constructor::<StoreModV1_Ref>(store_loader::<S>, CheckTypeLayout::Yes) }
}

/// The library header of a registry-driver plugin.
pub const fn registry_header<R: RegistryDriver + Meta>() -> LibHeader {
    // SAFETY: the constructor returns the prefix of a `RegistryModV1`, the module type named.
    unsafe { LibHeader::from_constructor::<RegistryModV1_Ref>(registry_loader::<R>, CheckTypeLayout::Yes) }
}

/// In-process access to a plugin's ABI objects, exactly as the host sees them after
/// loading, for tests and the conformance suites.
#[doc(hidden)]
pub fn open_store_in_process<S: Store + Meta>(
    name: &str,
    config: &serde_json::Value,
    dir: &std::path::Path,
) -> Result<StoreV1_TO<'static, RBox<()>>> {
    let config = config.to_string();
    let dir = dir.to_string_lossy();
    open_store::<S>(name.into(), config.as_str().into(), dir.as_ref().into()).into_result().map_err(Into::into)
}

/// [`open_store_in_process`] for registry drivers.
#[doc(hidden)]
pub fn open_registry_in_process<R: RegistryDriver + Meta>(
    name: &str,
    config: &serde_json::Value,
    dir: &std::path::Path,
) -> Result<RegistryV1_TO<'static, RBox<()>>> {
    let config = config.to_string();
    let dir = dir.to_string_lossy();
    open_registry::<R>(name.into(), config.as_str().into(), dir.as_ref().into()).into_result().map_err(Into::into)
}

/// Exports a [`Store`] implementation as this library's plugin. Use it once per library:
///
/// ```text
/// tank_sdk::export_store!(MemStore, name = "memstore");
/// ```
///
/// `name` must equal `plugin.name` in the plugin's `tank-plugin.toml`; the version is the
/// crate's Cargo version.
#[macro_export]
macro_rules! export_store {
    ($ty:ty, name = $name:literal) => {
        impl $crate::__private::Meta for $ty {
            const NAME: &'static str = $name;
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }

        /// The abi_stable library header, under the symbol name abi_stable looks up.
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __TANK_PLUGIN_HEADER: $crate::__private::LibHeader = $crate::__private::store_header::<$ty>();
    };
}

/// Exports a [`RegistryDriver`] implementation as this library's plugin. See
/// [`crate::export_store!`].
#[macro_export]
macro_rules! export_registry {
    ($ty:ty, name = $name:literal) => {
        impl $crate::__private::Meta for $ty {
            const NAME: &'static str = $name;
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }

        /// The abi_stable library header, under the symbol name abi_stable looks up.
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __TANK_PLUGIN_HEADER: $crate::__private::LibHeader = $crate::__private::registry_header::<$ty>();
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(abi_stable::library::ROOT_MODULE_LOADER_NAME, "_1as_0lib_1header_0root_bmodule_bloader");
    }

    #[test]
    fn guard_turns_panics_into_errors() {
        let r = guard::<()>(|| panic!("boom {}", 7));
        let e = r.into_result().unwrap_err();
        assert_eq!(e.kind, ErrorKind::PANICKED);
        assert_eq!(e.message.as_str(), "the plugin panicked: boom 7");
        let ok = guard(|| Ok(3)).into_result().unwrap();
        assert_eq!(ok, 3);
    }
}
