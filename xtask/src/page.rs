//! Builds the page in release with trunk and reports what a browser downloads.

use std::{fs, io::Write, path::Path};

use flate2::{write::GzEncoder, Compression};

use crate::{process, setup::Tools, workspace_root, Result};

/// `trunk build --release` into `dist/`, the directory the server serves, then writes each
/// file's compressed copies beside it and prints its size.
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
    precompress(&root.join("dist"))?;
    print_sizes(&root.join("dist"))
}

/// Writes `X.br` and `X.gz` beside every file `X` of `dist`, which the server takes instead of
/// compressing the page itself at every start (seconds of brotli at its best quality, under a
/// rolling restart's load ten).
fn precompress(dist: &Path) -> Result {
    for entry in walkdir::WalkDir::new(dist) {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let compressed_already =
            matches!(path.extension().and_then(|e| e.to_str()), Some("br" | "gz"));
        if !entry.file_type().is_file() || compressed_already {
            continue;
        }
        let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for (suffix, compressed) in [("br", brotli_best(&bytes)), ("gz", gzip_best(&bytes))] {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{suffix}"));
            fs::write(&name, compressed)
                .map_err(|e| format!("cannot write {}: {e}", Path::new(&name).display()))?;
        }
    }
    Ok(())
}

/// `bytes` compressed as the server would: brotli at quality 11.
pub fn brotli_best(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("writing to memory");
    out
}

/// `bytes` gzipped at the best level.
pub fn gzip_best(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
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

/// Prints each file's size raw, gzipped and brotli-compressed (its copies beside it), and the
/// wasm + JS total the page needs.
fn print_sizes(dist: &Path) -> Result {
    let size = |path: &Path| {
        fs::metadata(path)
            .map(|metadata| metadata.len())
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    println!("xtask: page size (dist/)");
    println!(
        "  {:<44} {:>10} {:>10} {:>10}",
        "file", "raw", "gzip", "brotli"
    );
    let mut totals = [0; 3];
    for entry in walkdir::WalkDir::new(dist).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let compressed_copy =
            matches!(path.extension().and_then(|e| e.to_str()), Some("br" | "gz"));
        if !entry.file_type().is_file() || compressed_copy {
            continue;
        }
        let with_suffix = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        };
        let sizes = [
            size(path)?,
            size(&with_suffix(".gz"))?,
            size(&with_suffix(".br"))?,
        ];
        let name = path
            .strip_prefix(dist)
            .unwrap_or(path)
            .display()
            .to_string();
        println!(
            "  {name:<44} {:>10} {:>10} {:>10}",
            sizes[0], sizes[1], sizes[2]
        );
        if name.ends_with(".wasm") || name.ends_with(".js") {
            for (total, size) in totals.iter_mut().zip(sizes) {
                *total += size;
            }
        }
    }
    println!(
        "  {:<44} {:>10} {:>10} {:>10}",
        "wasm + js", totals[0], totals[1], totals[2]
    );
    Ok(())
}
