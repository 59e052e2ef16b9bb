//! `tank control`: start, stop, restart, reload and check `tank api`, `tank registry` and
//! `tank scrubber --daemon` in the background, as the seed era's `glance-control` did
//! (reference glance.md §6.5).
//!
//! Each server has a pid file (`<run dir>/<server>.pid`, or `--pid-file`) and a log file
//! beside it (`<server>.log`) that receives the server's standard output and error. A pid
//! counts as the server only while that process is alive, not a zombie, and was started
//! as `tank <server>`: after a crash and a reboot the pid may belong to anything else,
//! and that must not be signalled.

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::{
    exit::{bad_input, fail, Exit},
    output,
};

/// `tank control`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    #[command(subcommand)]
    action: Action,
}

/// What to do with the server.
#[derive(Debug, Subcommand)]
enum Action {
    /// Start the server in the background and wait until it answers.
    ///
    /// The server runs as `tank <server> --config FILE` in its own process group, with its
    /// output in the log file beside the pid file. `start` returns once the API or
    /// registry server listens (the scrubber: once its first pass is done), or fails
    /// with the log's last line if the server stops or is not up within --timeout.
    #[command(after_help = "\
Examples:
  tank control start api --config /etc/tank/tank.toml
  tank control start registry --config /etc/tank/registry.toml --run-dir /run/tank
  tank control start scrubber --config /etc/tank/tank.toml")]
    Start(Target),
    /// Stop the server: SIGTERM, then SIGKILL if it has not stopped within --timeout.
    #[command(after_help = "Example:\n  tank control stop api\n  tank control stop api --timeout 60")]
    Stop(Target),
    /// Stop the server if it runs, then start it (with the configuration it was started
    /// with, unless --config names another).
    #[command(after_help = "Example:\n  tank control restart api")]
    Restart(Target),
    /// Apply a changed configuration. Tank's servers do not reload on SIGHUP, so this
    /// restarts the server, and says so.
    #[command(after_help = "Example:\n  tank control reload api")]
    Reload(Target),
    /// Say whether the server runs, with its pid and address. Exit code 0 when it runs,
    /// 3 when it does not.
    #[command(after_help = "Example:\n  tank control status api --json")]
    Status(Target),
}

/// The server and where its files are.
#[derive(Debug, Args)]
struct Target {
    /// The server.
    server: Server,
    /// The server's configuration file (required for the registry).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The directory of pid and log files.
    #[arg(long, env = "TANK_RUN_DIR", default_value = "/var/run/tank", value_name = "DIR")]
    run_dir: PathBuf,
    /// The pid file (default: <run dir>/<server>.pid); the log is beside it, <name>.log.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Seconds to wait for a start, or for a stop before SIGKILL.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    timeout: u64,
    /// Print JSON for scripts (keys in docs/cli.md).
    #[arg(long)]
    json: bool,
}

/// The servers `tank control` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Server {
    /// `tank api`.
    Api,
    /// `tank registry`.
    Registry,
    /// `tank scrubber --daemon`.
    Scrubber,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Api => "api",
            Server::Registry => "registry",
            Server::Scrubber => "scrubber",
        }
    }
}

/// How often a start or stop looks at the server while it waits.
const POLL: Duration = Duration::from_millis(50);

/// How long a SIGKILLed process gets to disappear.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// What `--json` prints after every action.
#[derive(Debug, Serialize)]
struct Report {
    server: &'static str,
    running: bool,
    pid: Option<i32>,
    pid_file: PathBuf,
    log_file: PathBuf,
    url: Option<String>,
}

/// What the pid file says.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// No pid file.
    Absent,
    /// The server runs with this pid.
    Running(i32),
    /// A pid file whose process is gone or is something else.
    Stale(String),
}

/// Runs `tank control <action>`.
pub fn run(args: ControlArgs) -> anyhow::Result<()> {
    match args.action {
        Action::Start(t) => {
            let report = start(&t, t.config.clone())?;
            print(&t, &report, None)
        }
        Action::Stop(t) => {
            let report = stop(&t)?;
            print(&t, &report, None)
        }
        Action::Restart(t) => restart(&t, None),
        Action::Reload(t) => {
            if !matches!(state(&t), State::Running(_)) {
                return Err(fail(
                    Exit::NotFound,
                    format!("tank {0} is not running; start it with `tank control start {0}`", t.server.name()),
                ));
            }
            let note =
                format!("tank {} does not reload its configuration on SIGHUP; restarting it instead", t.server.name());
            restart(&t, Some(note))
        }
        Action::Status(t) => status(&t),
    }
}

impl Target {
    fn pid_file(&self) -> PathBuf {
        self.pid_file.clone().unwrap_or_else(|| self.run_dir.join(format!("{}.pid", self.server.name())))
    }

    fn log_file(&self) -> PathBuf {
        self.pid_file().with_extension("log")
    }

    fn report(&self, pid: Option<i32>, running: bool) -> Report {
        Report {
            server: self.server.name(),
            running,
            pid,
            pid_file: self.pid_file(),
            log_file: self.log_file(),
            url: if running { last_url(&self.log_file(), 0) } else { None },
        }
    }
}

fn print(t: &Target, report: &Report, note: Option<&str>) -> anyhow::Result<()> {
    if t.json {
        let mut value = serde_json::to_value(report)?;
        value["note"] = note.map_or(serde_json::Value::Null, |n| n.into());
        return output::json(&value);
    }
    Ok(())
}

/// Reads the pid file and checks its process.
fn state(t: &Target) -> State {
    let path = t.pid_file();
    let Ok(text) = fs::read_to_string(&path) else { return State::Absent };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return State::Stale(format!("pid file {} holds no pid", path.display()));
    };
    if pid <= 0 {
        return State::Stale(format!("pid file {} holds pid {pid}", path.display()));
    }
    if !alive(pid) {
        return State::Stale(format!("pid file {} names pid {pid}, which is not running", path.display()));
    }
    if !is_server(pid, t.server) {
        return State::Stale(format!(
            "pid file {} names pid {pid}, which is not tank {}",
            path.display(),
            t.server.name()
        ));
    }
    State::Running(pid)
}

/// Whether `pid` exists and is not a zombie (a server that died while its parent, which
/// may be an init that does not reap, has not collected it).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let exists =
        unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    // /proc/<pid>/stat is "pid (comm) state ...": the state follows the last ')'.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// The arguments `pid` was started with.
fn cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` was started as `tank <server>`.
fn is_server(pid: i32, server: Server) -> bool {
    let args = cmdline(pid);
    let program = args.first().map(|p| Path::new(p).file_name().unwrap_or_default().to_string_lossy().into_owned());
    program.is_some_and(|p| p.starts_with("tank")) && args.get(1).map(String::as_str) == Some(server.name())
}

fn signal(pid: i32, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill takes plain integers; the pid was checked to be our server just before.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits up to `limit` for `done`, looking every [`POLL`].
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

fn start(t: &Target, config: Option<PathBuf>) -> anyhow::Result<Report> {
    let name = t.server.name();
    let pid_file = t.pid_file();
    match state(t) {
        State::Running(pid) => {
            return Err(fail(
                Exit::Refused,
                format!(
                    "tank {name} is already running (pid {pid}, pid file {}); stop it with `tank control stop {name}`, \
                     or use `tank control restart {name}`",
                    pid_file.display()
                ),
            ))
        }
        State::Stale(why) => {
            eprintln!("tank: {why}; removing the stale pid file");
            fs::remove_file(&pid_file).with_context(|| format!("cannot remove {}", pid_file.display()))?;
        }
        State::Absent => {}
    }
    let config =
        match config {
            Some(c) => Some(fs::canonicalize(&c).map_err(|e| {
                bad_input(format!("cannot use configuration file {}: {e}; check --config", c.display()))
            })?),
            None if t.server == Server::Registry => {
                return Err(bad_input("tank registry needs its configuration file; give --config FILE"))
            }
            None => None,
        };
    let dir = pid_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| {
        bad_input(format!(
            "cannot create the run directory {}: {e}; give another with --run-dir DIR or TANK_RUN_DIR",
            dir.display()
        ))
    })?;
    let log_file = t.log_file();
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .map_err(|e| bad_input(format!("cannot open the log file {}: {e}; check --run-dir", log_file.display())))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);

    let exe = std::env::current_exe().context("cannot find the tank binary to start")?;
    let mut cmd = Command::new(&exe);
    cmd.arg(name);
    if let Some(c) = &config {
        cmd.arg("--config").arg(c);
    }
    if t.server == Server::Scrubber {
        cmd.arg("--daemon");
    }
    // Its own process group: a Ctrl-C or a hang-up at this terminal is not the server's.
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).process_group(0);
    let shown = config.as_ref().map_or_else(|| "its default configuration".to_owned(), |c| c.display().to_string());
    if !t.json {
        println!("Starting tank {name} with {shown}");
    }
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", exe.display()))?;
    let pid = child.id() as i32;
    write_pid(&pid_file, pid)?;

    let timeout = Duration::from_secs(t.timeout);
    let mut url = None;
    let mut exited = None;
    let ready = wait_for(timeout, || {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            return true;
        }
        match t.server {
            Server::Scrubber => log_has(&log_file, log_start, "scrubbed "),
            _ => {
                url = last_url(&log_file, log_start);
                url.as_deref().is_some_and(answers)
            }
        }
    });
    if let Some(status) = exited {
        let _ = fs::remove_file(&pid_file);
        return Err(fail(
            Exit::Failure,
            format!(
                "tank {name} stopped during its start ({status}): {}; see {}",
                last_line(&log_file, log_start),
                log_file.display()
            ),
        ));
    }
    if !ready {
        // Left running: it may be slow (a large registry to open) rather than broken.
        // Dropping the handle neither kills nor waits for it.
        drop(child);
        return Err(fail(
            Exit::Failure,
            format!(
                "tank {name} (pid {pid}) did not answer within {} s; it is left running; its log's last line: {}; \
                 see {}, then `tank control stop {name}`",
                t.timeout,
                last_line(&log_file, log_start),
                log_file.display()
            ),
        ));
    }
    // The server outlives this command.
    drop(child);
    if !t.json {
        match &url {
            Some(u) => println!("Started tank {name} (pid {pid}), listening on {u}; log {}", log_file.display()),
            None => println!("Started tank {name} (pid {pid}); log {}", log_file.display()),
        }
    }
    Ok(Report { server: name, running: true, pid: Some(pid), pid_file, log_file, url })
}

/// Writes the pid file whole or not at all: a reader never sees half a pid.
fn write_pid(path: &Path, pid: i32) -> anyhow::Result<()> {
    let temp = path.with_extension("pid.new");
    fs::write(&temp, format!("{pid}\n")).with_context(|| format!("cannot write {}", temp.display()))?;
    fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The log's lines from byte `from` on.
fn log_lines(log: &Path, from: u64) -> Vec<String> {
    use std::io::{Seek, SeekFrom};
    let Ok(mut file) = fs::File::open(log) else { return Vec::new() };
    if file.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    BufReader::new(file).lines().map_while(Result::ok).collect()
}

fn log_has(log: &Path, from: u64, text: &str) -> bool {
    log_lines(log, from).iter().any(|l| l.contains(text))
}

/// The last non-empty log line since `from`, without colour codes.
fn last_line(log: &Path, from: u64) -> String {
    log_lines(log, from)
        .iter()
        .rev()
        .map(|l| strip_ansi(l))
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| "(the log is empty)".into())
}

/// The address of the last "listening on http://ADDR" line since `from`. The servers end
/// that line with the address (`cli/server.rs`, `listen`).
fn last_url(log: &Path, from: u64) -> Option<String> {
    const MARK: &str = "listening on http://";
    log_lines(log, from).iter().rev().find_map(|line| {
        let line = strip_ansi(line);
        let at = line.find(MARK)?;
        let addr: String =
            line[at + MARK.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || ".:[]-".contains(*c)).collect();
        (!addr.is_empty()).then(|| format!("http://{addr}"))
    })
}

/// Whether something accepts connections at `url` (`http://host:port`).
fn answers(url: &str) -> bool {
    use std::net::ToSocketAddrs;
    let addr = url.trim_start_matches("http://");
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// Drops terminal colour sequences (`ESC [ ... m`) from a log line.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn stop(t: &Target) -> anyhow::Result<Report> {
    let name = t.server.name();
    let pid_file = t.pid_file();
    let pid = match state(t) {
        State::Running(pid) => pid,
        State::Absent => {
            return Err(fail(
                Exit::NotFound,
                format!("tank {name} is not running (no pid file {}); nothing to stop", pid_file.display()),
            ))
        }
        State::Stale(why) => {
            let _ = fs::remove_file(&pid_file);
            return Err(fail(Exit::NotFound, format!("tank {name} is not running: {why}; removed the stale pid file")));
        }
    };
    if !t.json {
        println!("Stopping tank {name} (pid {pid}) with SIGTERM");
    }
    signal(pid, libc::SIGTERM).with_context(|| format!("cannot signal tank {name} (pid {pid})"))?;
    let gone = || !alive(pid);
    if !wait_for(Duration::from_secs(t.timeout), gone) {
        eprintln!("tank: tank {name} (pid {pid}) did not stop within {} s of SIGTERM; sending SIGKILL", t.timeout);
        // It may have stopped between the last look and now.
        if let Err(e) = signal(pid, libc::SIGKILL) {
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(anyhow::Error::new(e).context(format!("cannot kill tank {name} (pid {pid})")));
            }
        }
        if !wait_for(KILL_GRACE, gone) {
            return Err(fail(
                Exit::Failure,
                format!(
                    "tank {name} (pid {pid}) is still there after SIGKILL; look at it with `ps -o stat,cmd -p {pid}`"
                ),
            ));
        }
    }
    fs::remove_file(&pid_file)
        .with_context(|| format!("tank {name} stopped, but {} cannot be removed", pid_file.display()))?;
    if !t.json {
        println!("Stopped tank {name} (pid {pid})");
    }
    Ok(t.report(Some(pid), false))
}

fn restart(t: &Target, note: Option<String>) -> anyhow::Result<()> {
    let name = t.server.name();
    if let Some(note) = &note {
        if !t.json {
            println!("{note}");
        }
    }
    let config = match state(t) {
        State::Running(pid) => {
            // Without --config, start again with the file the server was started with.
            let previous = t.config.clone().or_else(|| config_of(pid));
            stop(t)?;
            previous
        }
        _ => {
            if !t.json {
                println!("tank {name} was not running");
            }
            t.config.clone()
        }
    };
    let report = start(t, config)?;
    print(t, &report, note.as_deref())
}

/// The `--config` a running server was started with.
fn config_of(pid: i32) -> Option<PathBuf> {
    let args = cmdline(pid);
    args.iter().position(|a| a == "--config").and_then(|i| args.get(i + 1)).map(PathBuf::from)
}

fn status(t: &Target) -> anyhow::Result<()> {
    let name = t.server.name();
    match state(t) {
        State::Running(pid) => {
            let report = t.report(Some(pid), true);
            if t.json {
                return print(t, &report, None);
            }
            match &report.url {
                Some(url) => println!("tank {name} is running (pid {pid}), listening on {url}"),
                None => println!("tank {name} is running (pid {pid})"),
            }
            Ok(())
        }
        other => {
            print(t, &t.report(None, false), None)?;
            let why = match other {
                State::Stale(why) => format!("tank {name} is not running: {why} (a stale pid file)"),
                _ => format!("tank {name} is not running (no pid file {})", t.pid_file().display()),
            };
            Err(fail(Exit::NotFound, format!("{why}; start it with `tank control start {name}`")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_from_a_coloured_log_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("api.log");
        fs::write(
            &log,
            "2026-01-01T00:00:00Z \u{1b}[32m INFO\u{1b}[0m tank_host: listening on http://127.0.0.1:40123\u{1b}[0m\n\
             later line\n",
        )
        .unwrap();
        assert_eq!(last_url(&log, 0).as_deref(), Some("http://127.0.0.1:40123"));
        assert_eq!(last_line(&log, 0), "later line");
        assert_eq!(last_url(&log, 10_000), None);
    }

    #[test]
    fn our_own_process_is_alive_and_not_a_server() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        assert!(!is_server(me, Server::Api));
    }
}
