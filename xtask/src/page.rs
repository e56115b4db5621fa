//! Builds the page in release with trunk and reports what a browser downloads.

use std::{fs, io::Write, path::Path};

use flate2::{write::GzEncoder, Compression};

use crate::{process, setup::Tools, workspace_root, Result};

/// `trunk build --release` into `dist/`, the directory the server serves, then prints its size.
pub fn build_release(tools: &Tools) -> Result {
    let root = workspace_root();
    println!("xtask: building the page (release)");
    process::run(tools.command("trunk").current_dir(&root).args([
        "build",
        "--release",
        "--offline",
        "--dist",
        "dist",
    ]))?;
    print_sizes(&root.join("dist"))
}

/// Builds the page, then the release server, which embeds it (the one file is the whole app),
/// and `packages` besides.
pub fn build_release_server(tools: &Tools, packages: &[&str]) -> Result {
    build_release(tools)?;
    let mut command = tools.command("cargo");
    command.current_dir(workspace_root()).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "greeter-server",
    ]);
    for package in packages {
        command.args(["-p", package]);
    }
    process::run(&mut command)
}

/// Prints each file's size raw and gzipped, and the wasm + JS total the page needs.
fn print_sizes(dist: &Path) -> Result {
    let mut rows = Vec::new();
    for entry in walkdir::WalkDir::new(dist).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.file_type().is_file() {
            let path = entry.path();
            let bytes =
                fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let name = path
                .strip_prefix(dist)
                .unwrap_or(path)
                .display()
                .to_string();
            rows.push((name, bytes));
        }
    }
    println!("xtask: page size (dist/)");
    println!("  {:<44} {:>10} {:>10}", "file", "raw", "gzip");
    let (mut raw_total, mut gzip_total) = (0, 0);
    for (name, bytes) in &rows {
        let gzip = gzip_len(bytes);
        println!("  {name:<44} {:>10} {:>10}", bytes.len(), gzip);
        if name.ends_with(".wasm") || name.ends_with(".js") {
            raw_total += bytes.len();
            gzip_total += gzip;
        }
    }
    println!("  {:<44} {raw_total:>10} {gzip_total:>10}", "wasm + js");
    Ok(())
}

pub fn gzip_len(bytes: &[u8]) -> usize {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory").len()
}
