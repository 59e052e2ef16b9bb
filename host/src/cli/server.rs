//! The server commands: `tank api`, `tank registry`, `tank scrubber` and `tank plugins`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{bail, Context};

use super::PluginsArgs;
use crate::{
    config::{self, Config},
    plugin::{
        host_log,
        loader::{self, Catalog, Depth, Entry},
    },
    registry_server::{self, config::RegistryConfig, RegistryServer},
    scrubber,
    state::{self, Tank},
};

pub(super) fn scrubber(config_path: Option<&Path>, daemon: bool) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    init_logging(config.verbose);
    let mut catalog = loader::scan(&config.plugin_dirs, Depth::Load, host_log::max_level());
    let tank = Tank::open(&config, &mut catalog)?;
    let scrub_time = std::time::Duration::from_secs(config.api.scrub_time);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async move {
        loop {
            let pass = scrubber::scrub_once(&tank.images, scrub_time).await?;
            println!("scrubbed {}, waiting {}, failed {}", pass.scrubbed, pass.waiting, pass.failed);
            if !daemon {
                if pass.failed > 0 {
                    bail!(
                        "{} images could not be scrubbed (see the log); they stay queued for the next pass",
                        pass.failed
                    );
                }
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(config.api.wakeup_time)).await;
        }
    })
}

/// Finds the configuration: `--config`, else the first default location that exists.
pub(super) fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    if let Some(p) = path {
        return Ok(Config::load(p)?);
    }
    let candidates = config::default_locations();
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => Ok(Config::load(p)?),
        None => bail!(
            "no configuration file found (looked in {}); pass --config FILE",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub(super) fn api(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    init_logging(config.verbose);
    let mut catalog = loader::scan(&config.plugin_dirs, Depth::Load, host_log::max_level());
    let tank = Tank::open(&config, &mut catalog)?.authenticate(&config)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async move {
        // Bound before recovery: a second process started by mistake with this server's
        // config (and so its node_id) fails on the port before it ends the first one's
        // uploads. Announced after it: whoever waits for the line finds recovery done.
        let listener = bind(&config.api_host, config.api_port, "api_port", &config.path).await?;
        let addr = listener.local_addr()?;
        tracing::info!(auth_strategy = tank.auth.name(), "callers are authenticated");
        if tank.auth.name() == "noauth" && !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "auth_strategy is noauth and the API listens beyond loopback: anyone who reaches it is the \
                 administrator; set auth_strategy (docs/authentication.md) or api_host = \"127.0.0.1\""
            );
        }
        let recovered =
            tank.images.recover(true).await.map_err(|e| anyhow::anyhow!("cannot recover interrupted uploads: {e}"))?;
        if recovered > 0 {
            tracing::warn!(count = recovered, "uploads interrupted by the last stop were ended");
        }
        announce(&listener)?;
        let tank = Arc::new(tank);
        if tank.api.delayed_delete {
            let (scrub_time, wakeup) = (
                std::time::Duration::from_secs(tank.api.scrub_time),
                std::time::Duration::from_secs(tank.api.wakeup_time),
            );
            tokio::spawn(scrubber::scrub_forever(tank.images.clone(), scrub_time, wakeup));
        }
        tokio::spawn(scrubber::reclaim_forever(tank.images.clone()));
        until_stopped(crate::api::serve(tank, listener)).await
    })
}

/// Binds `host:port` and logs the line scripts and tests wait for; a port in use is
/// reported with the key (`port_key`) and file to change.
async fn listen(host: &str, port: u16, port_key: &str, config: &Path) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = bind(host, port, port_key, config).await?;
    announce(&listener)?;
    Ok(listener)
}

/// Binds `host:port`, saying which key of which file to change when the port is taken.
async fn bind(host: &str, port: u16, port_key: &str, config: &Path) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = format!("{host}:{port}");
    tokio::net::TcpListener::bind(&addr).await.with_context(|| {
        format!("cannot listen on {addr}; is another server using the port? Change {port_key} in {}", config.display())
    })
}

/// Logs the line scripts and tests wait for: the server answers from now on.
fn announce(listener: &tokio::net::TcpListener) -> anyhow::Result<()> {
    // Nothing after the address on this line: scripts and tests read it.
    tracing::info!("listening on http://{}", listener.local_addr()?);
    Ok(())
}

/// Runs a server until it fails or the process is asked to stop.
async fn until_stopped(server: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::select! {
        r = server => r,
        _ = shutdown_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

pub(super) fn registry(config_path: &Path) -> anyhow::Result<()> {
    let config = RegistryConfig::load(config_path)?;
    init_logging(config.verbose);
    let mut catalog = loader::scan(&config.plugin_dirs, Depth::Load, host_log::max_level());
    let driver = state::open_registry(&config.driver_config(), &mut catalog)?;
    driver
        .check()
        .map_err(|e| anyhow::anyhow!("registry driver '{}' check failed: {}", config.registry_driver, e.message))?;
    let server = RegistryServer::new(driver, config.limit_param_default, config.api_limit_max);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async move {
        tracing::info!("registry driver '{}' opened", config.registry_driver);
        let listener = listen(&config.registry_host, config.registry_port, "registry_port", &config.path).await?;
        until_stopped(registry_server::serve(Arc::new(server), listener)).await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else { return std::future::pending().await };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

pub(super) fn plugins(args: &PluginsArgs) -> anyhow::Result<()> {
    // Plugins only log problems here; the table says the rest.
    let _ = tracing_subscriber::fmt().with_env_filter("error").with_writer(std::io::stderr).try_init();
    let (dirs, config) = if args.plugin_dirs.is_empty() {
        let config = load_config(args.config.as_deref())?;
        (config.plugin_dirs.clone(), Some(config))
    } else {
        (args.plugin_dirs.clone(), None)
    };
    let depth = if args.verify { Depth::Load } else { Depth::Manifests };
    let mut catalog = loader::scan(&dirs, depth, 1);
    if args.verify {
        if let Some(config) = &config {
            verify_open(config, &mut catalog);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &catalog.entries)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &catalog.entries, &dirs)?;
    }
    Ok(())
}

/// `--verify` with a configuration: open and check what the server would, each part on
/// its own so that one failure does not hide another.
fn verify_open(config: &Config, catalog: &mut Catalog) {
    if let Err(e) = state::open_stores(config, catalog) {
        eprintln!("tank: {e:#}");
    }
    let name = config.registry_driver.clone();
    let failure = match state::open_registry(config, catalog) {
        Ok(registry) => registry.check().err().map(|e| format!("registry driver '{name}' check failed: {}", e.message)),
        Err(e) => Some(format!("{e:#}")),
    };
    if let Some(reason) = failure {
        if catalog.registry_entry(&name).is_some_and(|e| e.is_ok()) {
            catalog.fail(&name, "open-failed", reason);
        } else {
            eprintln!("tank: {reason}");
        }
    }
}

fn print_table(out: &mut impl Write, entries: &[Entry], dirs: &[PathBuf]) -> anyhow::Result<()> {
    if entries.is_empty() {
        let dirs = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        writeln!(out, "no plugins found in {dirs}")?;
        return Ok(());
    }
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.kind.unwrap_or("?").to_owned(),
                e.version.clone().unwrap_or_else(|| "?".into()),
                e.generation.map_or_else(|| "?".into(), |g| g.to_string()),
                if e.schemes.is_empty() { "-".into() } else { e.schemes.join(",") },
                e.status.to_owned(),
                e.path.display().to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "VERSION", "ABI", "SCHEMES", "STATUS", "PATH"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(&header))?;
    for (row, entry) in rows.iter().zip(entries) {
        writeln!(out, "{}", line(&row.iter().map(String::as_str).collect::<Vec<_>>()))?;
        if let Some(reason) = &entry.reason {
            writeln!(out, "  └ {reason}")?;
        }
    }
    Ok(())
}
