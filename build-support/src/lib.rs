//! Compiles guest crates of this workspace to `wasm32-wasip2` components from a build
//! script and writes a Rust file that embeds them with `include_bytes!`.
//!
//! Used by `host/build.rs` (the bundled kind plugins) and `tests/build.rs` (hostile
//! fixture components). It follows wasmtime's `gdbstub-component/artifact/build.rs`: the
//! nested cargo gets its own target directory so it never waits on the outer build's
//! lock, and host-only rustflags (coverage, sanitizers) do not leak into the guests.
//!
//! This is not a general-purpose library: it panics with a message that says what to
//! do, which is how a build script reports failure. Its [`scripts`] module serves tests
//! the same way: it runs the workspace's install scripts on first use.

pub mod scripts;

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One guest crate to build: the directory name is its short name, its package is
/// `<prefix><short name>`.
#[derive(Debug, Clone)]
pub struct Guest {
    /// Short name, e.g. `pods`; the key under which the component is embedded.
    pub name: String,
    /// Cargo package name, e.g. `periscope-plugin-pods`.
    pub package: String,
}

/// Lists the guest crates directly under `dir` (each subdirectory with a `Cargo.toml`),
/// skipping `exclude`, sorted by name. Package names are `<package_prefix><dir name>`.
pub fn guests_in(dir: &Path, package_prefix: &str, exclude: &[&str]) -> Vec<Guest> {
    let mut guests: Vec<Guest> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read guest directory {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !exclude.contains(&name.as_str()))
        .map(|name| Guest {
            package: format!("{package_prefix}{name}"),
            name,
        })
        .collect();
    guests.sort_by(|a, b| a.name.cmp(&b.name));
    guests
}

/// Builds `guests` for `wasm32-wasip2` with the workspace's `plugin` profile and writes
/// `OUT_DIR/<out_file>` holding `pub const <const_name>: &[(&str, &[u8])]`, sorted by
/// name. `watch` lists the paths whose change must rerun the build script.
pub fn build_and_embed(workspace: &Path, guests: &[Guest], watch: &[PathBuf], const_name: &str, out_file: &str) {
    for path in watch {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.lock").display());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let target_dir = guest_target_dir(&out_dir);
    if !guests.is_empty() {
        ensure_wasm_target(&target_dir);
        let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace)
            .args(["build", "--profile", "plugin", "--target", WASM_TARGET])
            .env("CARGO_TARGET_DIR", &target_dir)
            // Flags meant for the host build (coverage, sanitizers) must not reach the guests.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTC_WORKSPACE_WRAPPER");
        for guest in guests {
            cmd.args(["-p", &guest.package]);
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build guest components: {e}"));
        if !status.success() {
            panic!(
                "building guest components for wasm32-wasip2 failed (see the cargo output above); \
                 if it says the target is missing, run `rustup target add wasm32-wasip2` \
                 (rust-toolchain.toml normally installs it)"
            );
        }
    }
    let mut code = format!(
        "/// Components built from this workspace, by short name, sorted.\npub const {const_name}: &[(&str, &[u8])] = &[\n"
    );
    for guest in guests {
        let artifact = target_dir
            .join(WASM_TARGET)
            .join("plugin")
            .join(format!("{}.wasm", guest.package.replace('-', "_")));
        assert!(
            artifact.is_file(),
            "guest {} built but {} is missing; does its Cargo.toml set crate-type = [\"cdylib\"]?",
            guest.package,
            artifact.display()
        );
        writeln!(
            code,
            "    ({:?}, include_bytes!({:?})),",
            guest.name,
            artifact.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join(out_file), code).unwrap_or_else(|e| panic!("cannot write {out_file} in OUT_DIR: {e}"));
}

/// The target the guests are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// Installs the wasm target with rustup when the active toolchain lacks it.
///
/// rustup adds `rust-toolchain.toml`'s targets only when it installs the toolchain, not
/// to one already present, so a fresh clone on a machine with Rust would otherwise stop
/// here with "can't find crate for `std`". Build scripts of one build run in parallel
/// (host and test fixtures), so the check-and-install holds a file lock.
fn ensure_wasm_target(target_dir: &Path) {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let has_target = || {
        let out = Command::new(&rustc)
            .args(["--print", "target-libdir", "--target", WASM_TARGET])
            .output()
            .unwrap_or_else(|e| panic!("cannot run rustc to find the {WASM_TARGET} libraries: {e}"));
        out.status.success() && Path::new(String::from_utf8_lossy(&out.stdout).trim()).is_dir()
    };
    if has_target() {
        return;
    }
    std::fs::create_dir_all(target_dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", target_dir.display()));
    let lock_path = target_dir.join("rustup-target.lock");
    let lock =
        std::fs::File::create(&lock_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if has_target() {
        return;
    }
    println!(
        "cargo:warning=the toolchain lacks the {WASM_TARGET} target; installing it with `rustup target add {WASM_TARGET}`"
    );
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", WASM_TARGET]);
    // Inside cargo, rustup names the active toolchain; add the target to that one.
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        cmd.arg("--toolchain").arg(toolchain);
    }
    match cmd.status() {
        Ok(status) if status.success() && has_target() => {}
        Ok(status) => panic!(
            "`rustup target add {WASM_TARGET}` failed ({status}); the plugins are built for that target. \
             Run it yourself and look at its output"
        ),
        Err(e) => panic!(
            "the toolchain lacks the {WASM_TARGET} target and rustup cannot be run ({e}); \
             install the target for this toolchain (with rustup: `rustup target add {WASM_TARGET}`)"
        ),
    }
}

/// A target directory for guest builds that is shared by every profile of the outer
/// build (`<target>/wasm-guests`), so debug, test and release hosts reuse one guest build.
/// `OUT_DIR` is `<target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .map(|target| target.join("wasm-guests"))
        .unwrap_or_else(|| out_dir.join("wasm-guests"))
}
