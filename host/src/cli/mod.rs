//! The `tank` command line: argument definitions, and the dispatch to the commands behind
//! them.
//!
//! - `server.rs`: the servers and admin commands (`api`, `registry`, `scrubber`,
//!   `plugins`);
//! - `image.rs`, `member.rs`: the client verbs for people (`tank image`, `tank member`),
//!   over the `tank-client` crate;
//! - `control.rs`: `tank control`, starting and stopping servers with pid files;
//! - `output.rs`: tables, image blocks, sizes and progress bars;
//! - `exit.rs`: the exit codes and the one-line failure report.
//!
//! Every command returns `anyhow::Result`; `main` prints a failure as one line
//! (`tank: <what failed>; <what to do>`) and exits with the code [`exit::code`] picks.

mod control;
pub mod exit;
mod image;
mod member;
mod output;
mod server;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

pub use self::exit::report;
use crate::plugin::pack;

/// Tank: a virtual machine image service.
#[derive(Debug, Parser)]
#[command(name = "tank", version, about, long_about = None, after_help = TOP_EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const TOP_EXAMPLES: &str = "\
Examples:
  tank api --config /etc/tank/tank.toml          serve the Images API
  tank image add name=cirros disk_format=qcow2 container_format=bare --file cirros.img
  tank image index                               list images
  tank control start api --config /etc/tank/tank.toml
  tank token new --file /etc/tank/tokens.toml --user alice --project acme --roles member
  tank completions bash > /etc/bash_completion.d/tank

Exit codes: 0 done, 1 server or network failure, 2 bad input or usage, 3 not found,
4 refused (conflict, forbidden, already running). See docs/cli.md.";

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Images API.
    ///
    /// Example: tank api --config /etc/tank/tank.toml
    Api {
        /// The configuration file (default: $TANK_CONFIG, `<prefix>/etc/tank.toml` beside the
        /// binary, then /etc/tank/tank.toml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Serve the registry API (Glance's port 9191 API) for API servers using the remote
    /// registry driver; see docs/registry.md.
    ///
    /// Example: tank registry --config /etc/tank/registry.toml
    Registry {
        /// The registry's configuration file (its own, not tank.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// List installed plugins, or package one.
    ///
    /// Example: tank plugins --verify
    Plugins(PluginsArgs),
    /// Remove the data of images deleted with delayed_delete once scrub_time has passed.
    ///
    /// One pass, or with --daemon a pass every wakeup_time seconds. `tank api` runs the
    /// same passes itself when delayed_delete is on; this command is for a registry that
    /// another process can share (registry_driver = "remote"), or a stopped API server
    /// (sled lets one process at a time open its database).
    ///
    /// Example: tank scrubber --config /etc/tank/tank.toml --daemon
    Scrubber {
        /// The configuration file (found as for `tank api`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Keep running, a pass every wakeup_time seconds.
        #[arg(long)]
        daemon: bool,
    },
    /// Add, change, list, download and delete images on an API server.
    ///
    /// The verbs of the seed era's `glance` tool. Fields are `key=value` words; see
    /// `tank image <verb> --help` and docs/cli.md.
    #[command(after_help = "\
Examples:
  export TANK_URL=http://images.example.com:9292
  tank image add name=cirros disk_format=qcow2 container_format=bare --file cirros.img
  tank image index disk_format=qcow2
  tank image download 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 --file cirros.img")]
    Image(image::ImageArgs),
    /// Share images with other tenants, and see what is shared.
    #[command(after_help = "\
Examples:
  tank member add 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 tenant-b --token $TOKEN
  tank member list 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60")]
    Member(member::MemberArgs),
    /// Start, stop, restart, reload or check a server in the background, with a pid file.
    #[command(after_help = "\
Examples:
  tank control start api --config /etc/tank/tank.toml
  tank control status api
  tank control stop api")]
    Control(control::ControlArgs),
    /// Make API tokens for a server with auth_strategy = "tokens".
    #[command(after_help = "\
Examples:
  tank token new --file /etc/tank/tokens.toml --user alice --project acme --roles member,reader
  tank token new --file /etc/tank/tokens.toml --user ops --project admin --roles admin --json")]
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Print a shell completion script for tank.
    #[command(after_help = "\
Examples:
  tank completions bash > /etc/bash_completion.d/tank
  tank completions zsh > \"${fpath[1]}/_tank\"
  tank completions fish > ~/.config/fish/completions/tank.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `tank plugins`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PluginsArgs {
    /// Package a built plugin.
    #[command(subcommand)]
    pub action: Option<PluginsAction>,
    /// The configuration file whose plugin_dirs are listed.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A plugin dir to list instead of the configured ones (repeatable).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also hash and load every library, and open the configured ones.
    #[arg(long)]
    pub verify: bool,
}

/// `tank token <action>`.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a new random token, add its hash to the token file, and print the token once.
    ///
    /// The file (made readable by its owner only if missing) keeps the token's SHA-256,
    /// never the token; a running server reads the file again within a second. Remove a
    /// token's `[[token]]` entry from the file to revoke it.
    #[command(after_help = "\
Example:
  tank token new --file /etc/tank/tokens.toml --user alice --project acme --roles member,reader")]
    New {
        /// The token file (the server's token_file).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The user the token stands for.
        #[arg(long)]
        user: String,
        /// The user's project (tenant): what its images belong to.
        #[arg(long)]
        project: String,
        /// The roles it holds there, comma-separated (admin makes an administrator).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Print {"token", "user", "project", "roles", "file"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tank plugins <action>`.
#[derive(Debug, Subcommand)]
pub enum PluginsAction {
    /// Make an installable plugin folder from a built library and its source manifest,
    /// filling in abi.target and library.sha256.
    ///
    /// Example: tank plugins pack --manifest plugins/fs/tank-plugin.toml
    ///          --library target/release/libtank_plugin_fs.so --out /usr/lib/tank/plugins/fs
    Pack {
        /// The plugin's source tank-plugin.toml.
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// The built shared library.
        #[arg(long, value_name = "FILE")]
        library: PathBuf,
        /// The plugin folder to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Api { config } => server::api(config.as_deref()),
        Command::Scrubber { config, daemon } => server::scrubber(config.as_deref(), daemon),
        Command::Registry { config } => server::registry(&config),
        Command::Plugins(args) => match args.action {
            Some(PluginsAction::Pack { manifest, library, out }) => {
                pack::pack(&manifest, &library, &out)?;
                eprintln!("packed {} into {}", library.display(), out.display());
                Ok(())
            }
            None => server::plugins(&args),
        },
        Command::Image(args) => {
            die_on_closed_pipe();
            image::run(args)
        }
        Command::Member(args) => {
            die_on_closed_pipe();
            member::run(args)
        }
        Command::Control(args) => control::run(args),
        Command::Token { action: TokenAction::New { file, user, project, roles, json } } => {
            let roles: Vec<String> = roles.into_iter().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
            let token = crate::auth::add_token(&file, &user, &project, &roles)
                .map_err(|e| exit::bad_input(format!("cannot add a token: {e:#}")))?;
            if json {
                let doc =
                    serde_json::json!({"token": token, "user": user, "project": project, "roles": roles, "file": file});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                eprintln!(
                    "Added a token for {user} in project {project} (roles: {}) to {}; it is shown once, here:",
                    if roles.is_empty() { "none".to_owned() } else { roles.join(", ") },
                    file.display()
                );
                println!("{token}");
            }
            Ok(())
        }
        Command::Completions { shell } => {
            die_on_closed_pipe();
            clap_complete::generate(shell, &mut Cli::command(), "tank", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Lets a closed standard output end the command quietly, as it ends `cat`:
/// `tank image index | head -1` and `tank image download ID | head -c 512` must not print
/// an error. Rust ignores SIGPIPE, so writes would fail with EPIPE instead; only the client
/// commands go back to the default, never the servers, whose writes to a closed socket
/// must fail one request and not kill the process.
fn die_on_closed_pipe() {
    // SAFETY: called before this command starts any thread; SIG_DFL is always a valid
    // disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Where the client verbs connect, and how they print; shared by `tank image` and
/// `tank member`, and accepted after any of their verbs.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The API server: http://host:port (a trailing /v1 or /v2 is fine).
    #[arg(long, env = "TANK_URL", default_value = tank_client::DEFAULT_URL, global = true, value_name = "URL")]
    pub url: String,
    /// A token, sent as X-Auth-Token, for servers behind an authenticating proxy.
    #[arg(long, env = "TANK_TOKEN", hide_env_values = true, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Print JSON for scripts instead of text for people (keys in docs/cli.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// The Images API version to speak: v2 (today's), or v1 (the seed era's).
    #[arg(long, env = "TANK_API", default_value = "v2", global = true, value_name = "VERSION", value_parser = ["v1", "v2"])]
    pub api: String,
}

impl Connection {
    /// The client for `--url` and `--token`.
    fn client(&self) -> anyhow::Result<tank_client::Client> {
        let api = self.api.parse().map_err(|e| exit::bad_input(format!("{e}; set --api or TANK_API")))?;
        let client = tank_client::Client::new(&self.url)
            .map_err(|e| exit::bad_input(format!("{e}; set --url or TANK_URL to http://host:port")))?
            .with_api(api);
        match &self.token {
            Some(token) => Ok(client
                .with_token(token)
                .map_err(|e| exit::bad_input(format!("{e}; check --token or TANK_TOKEN")))?),
            None => Ok(client),
        }
    }
}

/// A runtime for one client command. Two workers: hyper drives the connection in a task
/// of its own, so that the socket is read on one thread while the command hashes and
/// writes the previous chunk on the other.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")
}
