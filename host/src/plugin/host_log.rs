//! The host side of plugin logging: plugins send each `tracing` event through
//! [`tank_sdk::abi::HostV1::log`], and it lands in the host's own subscriber, tagged with the
//! plugin's name, so operators read one log.

use abi_stable::std_types::RStr;

/// The function every plugin gets as `HostV1::log`.
pub extern "C" fn log(plugin: RStr<'_>, level: u8, target: RStr<'_>, message: RStr<'_>) {
    // A panic must not unwind into the plugin's frame (that aborts the process); a log line
    // is not worth that, so it is dropped instead.
    let _ = std::panic::catch_unwind(|| {
        let (plugin, target, message) = (plugin.as_str(), target.as_str(), message.as_str());
        match level {
            1 => tracing::error!(target: "plugin", plugin, module = target, "{message}"),
            2 => tracing::warn!(target: "plugin", plugin, module = target, "{message}"),
            3 => tracing::info!(target: "plugin", plugin, module = target, "{message}"),
            4 => tracing::debug!(target: "plugin", plugin, module = target, "{message}"),
            _ => tracing::trace!(target: "plugin", plugin, module = target, "{message}"),
        }
    });
}

/// The most verbose level the current subscriber keeps, as `HostV1::max_level` counts.
pub fn max_level() -> u8 {
    match tracing::level_filters::LevelFilter::current().into_level() {
        None => 0,
        Some(tracing::Level::ERROR) => 1,
        Some(tracing::Level::WARN) => 2,
        Some(tracing::Level::INFO) => 3,
        Some(tracing::Level::DEBUG) => 4,
        Some(tracing::Level::TRACE) => 5,
    }
}
