//! Plugins: their manifests, the loader that turns a plugin folder into a loaded module,
//! and the handles through which the host calls an opened store or registry driver.

pub mod handles;
pub mod host_log;
pub mod loader;
pub mod manifest;
pub mod pack;
