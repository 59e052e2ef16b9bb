//! Records the target triple the sdk is built for, so the host can refuse a plugin built
//! for another target before it ever opens the library.
fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=TANK_SDK_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
