//! Compiles the vendored Kubernetes protobuf schemas in `proto/` (see
//! `proto/README.md`) into one encoded `FileDescriptorSet`, which the `protobuf` module
//! embeds and reads with prost-reflect. protox is a protobuf compiler in Rust, so the
//! build needs no `protoc`.

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no .proto files under {}", root.display());
    let descriptors = protox::Compiler::new([&root])
        .and_then(|mut compiler| {
            compiler
                .include_imports(true)
                .include_source_info(false)
                .open_files(&files)?;
            Ok(compiler.encode_file_descriptor_set())
        })
        .unwrap_or_else(|e| panic!("compiling the Kubernetes schemas in {}: {e}", root.display()));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("kubernetes.binpb");
    std::fs::write(&out, descriptors).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// Every `.proto` file under `dir`, relative to `root` (the import root).
fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "proto") {
            files.push(path.strip_prefix(root).expect("walked from root").to_path_buf());
        }
    }
}
