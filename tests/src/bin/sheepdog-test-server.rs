//! `sheepdog-test-server DIR [LISTEN]`: the in-repo Sheepdog protocol test server
//! (`tank_tests::sheepdog`) as a process, for `tests/bench/sheepdog.sh`. Objects go to
//! `DIR` as sparse files; it listens on `LISTEN` (default `127.0.0.1:0`), prints
//! `listening on <addr>` and serves until killed. A test tool, never installed by
//! `cargo xtask dist`.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("usage: sheepdog-test-server DIR [LISTEN]"))?);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    std::fs::create_dir_all(&dir)?;
    let server = tank_tests::sheepdog::start_in(&dir, &listen);
    println!("listening on {}", server.addr);
    loop {
        std::thread::park();
    }
}
