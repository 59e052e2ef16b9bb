//! Store failures as §1.6 answers them, caused for real: the fs store's datadir on a small
//! tmpfs that fills up (413), and on one remounted read-only (503). Either way the image
//! ends `killed` and the store keeps no partial data.
//!
//! Mounting needs root (or sudo), which the CI machines have; without it the suite fails
//! and says so, it never skips.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tank_tests::{data, Deployment, Server};

/// A tmpfs mounted on a folder, unmounted on drop.
struct Tmpfs(PathBuf);

fn mount(args: &[&str]) {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mut cmd = if root { Command::new("mount") } else { Command::new("sudo") };
    if !root {
        cmd.args(["-n", "mount"]);
    }
    let out = cmd.args(args).output().expect("mount runs");
    assert!(
        out.status.success(),
        "mount {args:?} failed (this suite needs root or sudo): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Tmpfs {
    fn new(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.to_str().unwrap()]);
        Tmpfs(dir.to_path_buf())
    }

    fn read_only(&self) {
        mount(&["-o", "remount,ro", self.0.to_str().unwrap()]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn status_of(s: &Server, id: &str) -> String {
    s.head(&format!("/v1/images/{id}")).header("x-image-meta-status").unwrap_or_default().to_owned()
}

fn upload(s: &Server, bytes: usize) -> (u16, String, String) {
    let id = "6a2b5e7c-0f3d-4c61-9d8e-1b2a3c4d5e6f";
    let r = s.upload(&data(bytes, 5), &[("x-image-meta-id", id), ("x-image-meta-name", "big")]);
    (r.status, r.json()["error"]["message"].as_str().unwrap_or_default().to_owned(), id.to_owned())
}

#[test]
fn a_full_store_answers_413_and_keeps_nothing() {
    let d = Deployment::new();
    let _fs = Tmpfs::new(&d.datadir(), "4m");
    d.config("");
    let s = d.start();
    let (status, message, id) = upload(&s, 8 << 20);
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("No space left"), "{message}");
    let datadir = d.datadir().display().to_string();
    assert!(
        !message.contains(&datadir) && !message.contains(".partial"),
        "no store path reaches the client: {message}"
    );
    assert_eq!(status_of(&s, &id), "killed");
    assert!(d.data_files().is_empty(), "partial data left: {:?}", d.data_files());
    // The space is back: a smaller image fits.
    let r = s.upload(&data(1 << 20, 6), &[("x-image-meta-name", "small")]);
    assert_eq!(r.status, 201, "{:?}", r.body);
}

#[test]
fn a_store_that_refuses_writes_answers_503() {
    let d = Deployment::new();
    let fs = Tmpfs::new(&d.datadir(), "16m");
    d.config("");
    let s = d.start();
    fs.read_only();
    let (status, message, id) = upload(&s, 2 << 20);
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("Read-only file system"), "{message}");
    let datadir = d.datadir().display().to_string();
    assert!(!message.contains(&datadir), "no store path reaches the client: {message}");
    assert_eq!(status_of(&s, &id), "killed");
    assert!(d.data_files().is_empty());
}
