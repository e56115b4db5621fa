//! The page compiled into a release binary by `build.rs` (from `dist/`), so the one file is the
//! whole app. Debug builds hold none, and read the page from disk.

use grpc_serve::AssetStore;

mod generated {
    // Written by build.rs: the files of `dist/` in a release build, nothing otherwise.
    include!(concat!(env!("OUT_DIR"), "/embedded_page.rs"));
}

/// The page in this binary, if it was built with one.
pub fn embedded() -> Option<AssetStore> {
    (!generated::PAGE.is_empty()).then(|| AssetStore::from_static(generated::PAGE))
}
