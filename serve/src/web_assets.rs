//! The built web page, served from the same port as the API.
//!
//! The page is held in memory, from one of two sources: a copy compiled into the binary (so the
//! one file is the whole app), or a directory read at start-up (trunk's `dist`). Either way each
//! file is compressed once, with brotli and gzip, and served in the encoding the browser prefers
//! (`X.br` and `X.gz` beside `X`, as `cargo xtask build-page` writes them, are taken as they are
//! once checked to decode to `X`: brotli at its best takes seconds each start otherwise),
//! with a strong ETag (304 on a match), `application/wasm` for the module so it compiles while it
//! streams, long-lived immutable caching for trunk's hashed file names, and `no-cache` for
//! index.html so a new deployment is picked up at once.
//!
//! index.html carries a Content-Security-Policy that allows exactly what the page needs: its own
//! scripts, trunk's inline bootstrap script by its hash, WebAssembly compilation, and connections
//! to its own origin (fetch and WebSockets). Paths are looked up in a table of the files there
//! are, so no request can reach anything else; a path that is not a file gets index.html, so the
//! app's own routes survive a reload.
//!
//! A gRPC request for a service the server does not have lands here too: it gets UNIMPLEMENTED in
//! the client's own protocol, not an HTML page.

use std::{collections::HashMap, convert::Infallible, io, io::Write, path::Path, sync::Arc};

use axum::{
    body::Body,
    extract::Request,
    response::{IntoResponse, Response},
};
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

/// One file, in every encoding it is served in.
#[derive(Debug)]
struct Asset {
    content_type: &'static str,
    cache_control: &'static str,
    etag: HeaderValue,
    identity: Bytes,
    brotli: Option<Bytes>,
    gzip: Option<Bytes>,
}

/// The page's files by URL path, ready to serve.
#[derive(Debug, Default)]
pub struct AssetStore {
    assets: HashMap<String, Asset>,
    /// The Content-Security-Policy of index.html, but for `connect-src`, which names the host.
    script_src: String,
}

impl AssetStore {
    /// A page compiled into the binary: `(URL path, contents)` pairs, as a build script writes
    /// them with `include_bytes!`, so the one file is the whole app.
    pub fn from_static(files: &[(&str, &[u8])]) -> Self {
        Self::from_files(
            files
                .iter()
                .map(|(path, bytes)| ((*path).to_owned(), bytes.to_vec())),
        )
    }

    /// Every file under `dir`.
    pub fn from_dir(dir: &Path) -> io::Result<Self> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir) {
            let entry = entry?;
            if entry.file_type().is_file() {
                let url_path = url_path(dir, entry.path());
                files.push((url_path, std::fs::read(entry.path())?));
            }
        }
        Ok(Self::from_files(files))
    }

    /// From `(URL path, contents)` pairs, e.g. `("/index.html", ...)`. A file `X.br` or `X.gz`
    /// beside `X` is taken as `X` compressed, if it decodes to `X`, rather than served as a file
    /// of its own.
    pub fn from_files(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        let mut files: HashMap<String, Vec<u8>> = files.into_iter().collect();
        let mut precompressed: HashMap<String, Precompressed> = HashMap::new();
        // (the copy's path, its file's path, whether it is brotli)
        let siblings: Vec<(String, String, bool)> = files
            .keys()
            .filter_map(|path| {
                let (base, brotli) = match (path.strip_suffix(".br"), path.strip_suffix(".gz")) {
                    (Some(base), _) => (base, true),
                    (_, Some(base)) => (base, false),
                    _ => return None,
                };
                files
                    .contains_key(base)
                    .then(|| (path.clone(), base.to_owned(), brotli))
            })
            .collect();
        for (path, base, brotli) in siblings {
            let bytes = files.remove(&path).expect("listed above");
            let entry = precompressed.entry(base).or_default();
            if brotli {
                entry.brotli = Some(bytes);
            } else {
                entry.gzip = Some(bytes);
            }
        }
        let mut inline_script_hashes = Vec::new();
        let assets = files
            .into_iter()
            .map(|(path, bytes)| {
                if path == "/index.html" {
                    inline_script_hashes = inline_scripts(&String::from_utf8_lossy(&bytes))
                        .map(|script| {
                            let digest = Sha256::digest(script.as_bytes());
                            format!(
                                "'sha256-{}'",
                                base64::engine::general_purpose::STANDARD.encode(digest)
                            )
                        })
                        .collect();
                }
                let given = precompressed.remove(&path).unwrap_or_default();
                let asset = Asset::new(&path, bytes, given);
                (path, asset)
            })
            .collect();
        Self {
            assets,
            script_src: format!(
                "script-src 'self' 'wasm-unsafe-eval' {}",
                inline_script_hashes.join(" ")
            ),
        }
    }

    /// Whether there is no page at all.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// How many files the page has.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    /// Answers a GET or HEAD for the page.
    fn respond(&self, request: &Request) -> Response {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "GET, HEAD")],
                "the page answers GET and HEAD\n",
            )
                .into_response();
        }
        let path = match request.uri().path() {
            "/" => "/index.html",
            path => path,
        };
        // The table lookup below could not leave the page anyway; saying so beats an HTML page.
        if is_traversal(path) {
            return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
        }
        let Some((path, asset)) = self
            .assets
            .get_key_value(path)
            .or_else(|| self.assets.get_key_value("/index.html"))
        else {
            return (
                StatusCode::NOT_FOUND,
                "no page here: build it with `cargo xtask run` (or `trunk build --release`)\n",
            )
                .into_response();
        };

        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, asset.etag.clone());
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(asset.cache_control),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if path == "/index.html" {
            if let Ok(csp) = HeaderValue::from_str(&self.content_security_policy(request)) {
                headers.insert(header::CONTENT_SECURITY_POLICY, csp);
            }
        }
        let matches_etag = request
            .headers()
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|tag| tag.trim() == asset.etag || tag.trim() == "*");
        if matches_etag {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }

        let accepted = accepted_encodings(request.headers());
        let (encoding, body) = match (&asset.brotli, &asset.gzip) {
            (Some(brotli), _) if accepted.brotli => (Some("br"), brotli.clone()),
            (_, Some(gzip)) if accepted.gzip => (Some("gzip"), gzip.clone()),
            _ => (None, asset.identity.clone()),
        };
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let body = if request.method() == Method::HEAD {
            Body::empty()
        } else {
            Body::from(body)
        };
        (StatusCode::OK, headers, body).into_response()
    }

    /// The page may load its own files, run its bootstrap script and WebAssembly, and connect to
    /// its own origin, by fetch or WebSocket; nothing else.
    fn content_security_policy(&self, request: &Request) -> String {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .filter(|host| !host.contains([' ', ';', ',', '\'']))
            .map(|host| format!(" ws://{host} wss://{host}"))
            .unwrap_or_default();
        format!(
            "default-src 'self'; {}; connect-src 'self'{host}; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
            self.script_src.trim_end()
        )
    }
}

/// A file's encodings as given beside it (`X.br`, `X.gz`), not yet checked.
#[derive(Debug, Default)]
struct Precompressed {
    brotli: Option<Vec<u8>>,
    gzip: Option<Vec<u8>>,
}

impl Asset {
    fn new(path: &str, bytes: Vec<u8>, given: Precompressed) -> Self {
        let identity = Bytes::from(bytes);
        let digest = Sha256::digest(&identity);
        let etag = format!("\"{}\"", hex(&digest[..12]));
        let smaller = |compressed: Vec<u8>| {
            (compressed.len() < identity.len()).then(|| Bytes::from(compressed))
        };
        // What was given is used if it decodes to the file: a stale one is compressed anew.
        let checked = |given: Option<Vec<u8>>, decode: fn(&[u8], usize) -> Option<Vec<u8>>| {
            let given = given?;
            if decode(&given, identity.len()).as_deref() == Some(&identity[..]) {
                Some(given)
            } else {
                tracing::warn!("{path}: its precompressed copy does not match it; compressing it");
                None
            }
        };
        let brotli =
            checked(given.brotli, decode_brotli).unwrap_or_else(|| compress_brotli(&identity));
        let gzip = checked(given.gzip, decode_gzip).unwrap_or_else(|| compress_gzip(&identity));
        Self {
            content_type: content_type(path),
            cache_control: if is_hashed(path) {
                // trunk puts a content hash in the name: a new build is a new URL.
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            },
            etag: HeaderValue::from_str(&etag).expect("hex is a valid header value"),
            brotli: smaller(brotli),
            gzip: smaller(gzip),
            identity,
        }
    }
}

/// The URL path of the file at `path` below `root`: `/assets/app.js`.
fn url_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .expect("below the root")
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .fold(String::new(), |url, part| url + "/" + &part)
}

/// A path with a `..` segment or a backslash, plain or percent-encoded.
fn is_traversal(path: &str) -> bool {
    let decoded = percent_decode(path);
    decoded.contains('\\') || decoded.split('/').any(|segment| segment == "..")
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The contents of every `<script>` without a `src`, as the browser hashes them for CSP.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (attributes, rest) = rest.split_once('>')?;
        let (script, _) = rest.split_once("</script>")?;
        (!attributes.contains("src=")).then_some(script)
    })
}

/// trunk's hashed names: `name-0123456789abcdef.js`, `name-0123456789abcdef_bg.wasm`.
fn is_hashed(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

struct Accepted {
    brotli: bool,
    gzip: bool,
}

/// Which encodings `Accept-Encoding` allows (a `q=0` entry refuses one).
fn accepted_encodings(headers: &HeaderMap) -> Accepted {
    let mut accepted = Accepted {
        brotli: false,
        gzip: false,
    };
    let entries = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for entry in entries {
        let mut parts = entry.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|param| {
            param
                .trim()
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        match name {
            "br" => accepted.brotli = !refused,
            "gzip" => accepted.gzip = !refused,
            _ => {}
        }
    }
    accepted
}

fn compress_gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn compress_brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("writing to memory");
    out
}

/// `compressed` decoded, if it decodes to at most `len` bytes.
fn decode_brotli(compressed: &[u8], len: usize) -> Option<Vec<u8>> {
    read_at_most(brotli::Decompressor::new(compressed, 4096), len)
}

/// `compressed` decoded, if it decodes to at most `len` bytes.
fn decode_gzip(compressed: &[u8], len: usize) -> Option<Vec<u8>> {
    read_at_most(flate2::read::GzDecoder::new(compressed), len)
}

/// All of `reader`, unless it fails or has more than `len` bytes.
fn read_at_most(reader: impl io::Read, len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    io::Read::read_to_end(&mut io::Read::take(reader, len as u64 + 1), &mut out).ok()?;
    (out.len() <= len).then_some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fallback for every path no gRPC service claimed: the page, or `unimplemented` for a gRPC
/// request (native or gRPC-Web) to an unknown service or method.
pub(crate) fn fallback<U, B>(
    assets: Arc<AssetStore>,
    unimplemented: U,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send
where
    U: tower::Service<Request, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    U::Future: Send,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    tower::service_fn(move |request: Request| {
        let assets = Arc::clone(&assets);
        let unimplemented = unimplemented.clone();
        async move {
            let response = if is_grpc(&request) {
                unimplemented.oneshot(request).await.into_response()
            } else {
                assets.respond(&request)
            };
            Ok(response)
        }
    })
}

/// Native gRPC (`application/grpc…`) or gRPC-Web (`application/grpc-web…`), by its content type.
pub(crate) fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_precompressed_copies_that_match_and_compresses_stale_ones_anew() {
        let js = b"console.log('hello');".repeat(100);
        let mut fast_brotli = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 1,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &js[..], &mut fast_brotli, &params).unwrap();
        assert_ne!(
            fast_brotli,
            compress_brotli(&js),
            "quality 1 differs from 11"
        );
        let store = AssetStore::from_files([
            ("/app.js".to_owned(), js.clone()),
            ("/app.js.br".to_owned(), fast_brotli.clone()),
            ("/app.js.gz".to_owned(), compress_gzip(b"an older build")),
            ("/orphan.br".to_owned(), b"served as it is".to_vec()),
        ]);
        // The copies beside a file are its encodings, not files of their own.
        let mut paths: Vec<&String> = store.assets.keys().collect();
        paths.sort();
        assert_eq!(paths, ["/app.js", "/orphan.br"]);
        let asset = &store.assets["/app.js"];
        assert_eq!(
            asset.brotli.as_deref(),
            Some(&fast_brotli[..]),
            "taken as given"
        );
        let gzip = asset.gzip.as_ref().expect("compressed anew");
        assert_eq!(decode_gzip(gzip, js.len()).as_deref(), Some(&js[..]));
        // A copy that decodes to more than its file is refused without decoding it all.
        assert_eq!(decode_brotli(&fast_brotli, js.len() - 1), None);
    }

    #[test]
    fn recognises_trunk_hashed_names() {
        assert!(is_hashed("/my-app-ced98fadb1e12bbf.js"));
        assert!(is_hashed("/my-app-ced98fadb1e12bbf_bg.wasm"));
        assert!(is_hashed("/style-e0b3f5dce2e47df7.css"));
        assert!(!is_hashed("/index.html"));
        assert!(!is_hashed("/my-app.js"));
    }

    #[test]
    fn spots_traversal_attempts() {
        for path in [
            "/../etc/passwd",
            "/assets/../../x",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/a\\..\\b",
            "/%5c..",
        ] {
            assert!(is_traversal(path), "{path}");
        }
        for path in ["/", "/index.html", "/a..b.js", "/.well-known/x"] {
            assert!(!is_traversal(path), "{path}");
        }
    }

    #[test]
    fn finds_inline_scripts_only() {
        let html = "<script src=\"/a.js\"></script><script type=\"module\">\nboot();\n</script>";
        assert_eq!(inline_scripts(html).collect::<Vec<_>>(), ["\nboot();\n"]);
    }

    #[test]
    fn reads_accept_encoding() {
        let parse = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            let accepted = accepted_encodings(&headers);
            (accepted.brotli, accepted.gzip)
        };
        assert_eq!(parse("gzip, deflate, br, zstd"), (true, true));
        assert_eq!(parse("gzip"), (false, true));
        assert_eq!(parse("br;q=0, gzip;q=0.5"), (false, true));
        assert_eq!(parse("identity"), (false, false));
    }
}
