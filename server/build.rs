//! Embeds the built page (`dist/` at the repository root) in release builds, so the release binary
//! alone serves the whole app. Debug builds embed nothing and read the page from disk.
//!
//! `GREETER_EMBED_DIST` names another directory to embed.

use std::{env, fmt::Write, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=GREETER_EMBED_DIST");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("embedded_page.rs");
    let mut files = Vec::new();
    if env::var("PROFILE").as_deref() == Ok("release") {
        let dist = env::var_os("GREETER_EMBED_DIST")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../dist")
            });
        println!("cargo:rerun-if-changed={}", dist.display());
        if dist.join("index.html").is_file() {
            for entry in walkdir::WalkDir::new(&dist) {
                let entry = entry.unwrap();
                if entry.file_type().is_file() {
                    let url_path = entry
                        .path()
                        .strip_prefix(&dist)
                        .unwrap()
                        .components()
                        .map(|part| part.as_os_str().to_string_lossy().into_owned())
                        .fold(String::new(), |url, part| url + "/" + &part);
                    files.push((url_path, entry.path().canonicalize().unwrap()));
                }
            }
        } else {
            println!(
                "cargo:warning=no built page in {}: this binary serves the page from --static-dir only",
                dist.display()
            );
        }
    }
    files.sort();
    let mut source = String::from("pub static PAGE: &[(&str, &[u8])] = &[\n");
    for (url_path, file) in files {
        writeln!(
            source,
            "    ({url_path:?}, include_bytes!({:?})),",
            file.display()
        )
        .unwrap();
    }
    source.push_str("];\n");
    std::fs::write(out, source).unwrap();
}
