//! nginx from Debian's package, started on loopback for the suites that need a real web
//! server (the http store's): plain http on one free port, https on another with a
//! certificate from a throwaway authority, and whatever `location` blocks a suite adds.
//!
//! `cargo xtask test` installs nginx and openssl where they are missing; a suite that
//! finds neither fails (it never skips).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A running nginx, stopped on drop. It runs as one process (`master_process off`), so
/// killing it leaves no workers behind.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// The http port.
    pub port: u16,
    /// The https port.
    pub tls_port: u16,
}

/// A program from `PATH`, or from the sbin folders a non-root `PATH` leaves out.
fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is missing: install the Debian package {name} (`cargo xtask test` installs it)")
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(program("openssl"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A certificate authority (`ca.pem`) and a server certificate it signed for 127.0.0.1
/// and localhost (`server.pem`, `server.key`), in `dir`. The server certificate is not
/// itself an authority: TLS clients refuse one that is.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Tank test CA"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

impl Nginx {
    /// Starts nginx serving the files of [`Nginx::www`] on both ports, with `locations`
    /// (nginx `location` blocks) in the http server. Waits until both ports answer.
    pub fn start(locations: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        certificates(root);
        let (port, tls_port) = (free_port(), free_port());
        let r = root.display();
        let config = format!(
            "daemon off;\nmaster_process off;\npid {r}/nginx.pid;\nerror_log {r}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  default_type application/octet-stream;\n\
               client_body_temp_path {r}/tmp/body;\n  proxy_temp_path {r}/tmp/proxy;\n\
               fastcgi_temp_path {r}/tmp/fastcgi;\n  uwsgi_temp_path {r}/tmp/uwsgi;\n  scgi_temp_path {r}/tmp/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {r}/www;\n{locations}\n  }}\n\
               server {{\n    listen 127.0.0.1:{tls_port} ssl;\n    root {r}/www;\n\
                 ssl_certificate {r}/server.pem;\n    ssl_certificate_key {r}/server.key;\n  }}\n}}\n"
        );
        std::fs::write(root.join("nginx.conf"), config).unwrap();
        let child = Command::new(program("nginx"))
            .args(["-p", &r.to_string(), "-c", &format!("{r}/nginx.conf")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx { child, dir, port, tls_port };
        crate::wait_until(Duration::from_secs(30), "nginx to listen", || {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited ({status}): {}", nginx.log());
            }
            [port, tls_port].iter().all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
        });
        nginx
    }

    /// The folder nginx serves.
    pub fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// The authority that signed the https server's certificate (a PEM file).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `https://127.0.0.1:<tls_port><path>`.
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.tls_port)
    }

    /// nginx's error log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
