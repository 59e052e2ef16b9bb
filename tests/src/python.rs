//! The real OpenStack clients (python-glanceclient, openstacksdk, python-openstackclient)
//! in a virtualenv the suite makes itself: `target/clients-venv`, with exactly the pinned
//! packages of `tests/clients/requirements.txt`, from PyPI.
//!
//! Test binaries run in parallel (nextest runs every test in a process of its own), so the
//! venv is made under a file lock, once: a stamp holding the requirements it was made
//! from tells later runs that it is ready.

use std::{fs::File, path::PathBuf, process::Command};

/// The venv's `python`, the venv made first if it is missing or stale.
pub fn clients() -> PathBuf {
    let requirements = crate::repo().join("tests/clients/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/clients/requirements.txt is readable");
    let target = crate::artifacts().parent().expect("target/<profile> has a parent").to_path_buf();
    let venv = target.join("clients-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("tank-requirements.txt");
    std::fs::create_dir_all(&target).unwrap();
    let lock = File::create(target.join("clients-venv.lock")).expect("the venv lock file can be made");
    lock.lock().expect("the venv lock can be taken");
    if std::fs::read_to_string(&stamp).is_ok_and(|made| made == wanted) && python.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let system = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("python3 is missing: install Debian's python3 and python3-venv");
    run(Command::new(system).args(["-m", "venv", venv.to_str().unwrap()]), "making the clients' venv");
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "installing the pinned clients from PyPI",
    );
    std::fs::write(&stamp, wanted).unwrap();
    python
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
