//! Plugins: their manifests, and the loader that turns a plugin folder into a usable store
//! or registry driver.

pub mod manifest;
