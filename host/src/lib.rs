//! The Tank host: configuration, the plugin loader, the Images API server and the admin
//! command line. The `tank` binary (`main.rs`) is a thin shell over this library.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod identity;
pub mod list_params;
pub mod plugin;
pub mod registry_server;
pub mod scrubber;
pub mod state;
