//! `tank control`: placeholder.
use clap::Args;

/// `tank control`.
#[derive(Debug, Args)]
pub struct ControlArgs {}

/// Runs `tank control`.
pub fn run(_args: ControlArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
