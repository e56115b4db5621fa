//! cargo, set up for the wasm crate's checks and tests: the target, the test servers the tests
//! compile in, and the test runner's WebDriver settings. The test step and the interop suite both
//! run the wasm tests, against different servers.

use std::{path::Path, process::Command};

use crate::setup::Tools;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// `cargo test` of the wasm tests (a browser's driver still to be named), against `server`, with
/// `dead` as the address where nothing listens.
pub fn wasm_test_command(tools: &Tools, root: &Path, server: &str, dead: &str) -> Command {
    let mut command = wasm_command(tools, root, server, dead);
    command.args(["test", "-p", "greeter-web", "--target", WASM_TARGET]);
    command
}

/// cargo, set up for the wasm crate: the test servers its tests compile in, the runner's
/// WebDriver settings, and clippy's lints as it compiles (see [`crate::lint`]).
pub fn wasm_command(tools: &Tools, root: &Path, server: &str, dead: &str) -> Command {
    let mut command = tools.command("cargo");
    crate::lint::with_clippy(tools, &mut command)
        .current_dir(root.join("web"))
        .env("GREETER_TEST_SERVER", server)
        .env("GREETER_TEST_DEAD_SERVER", dead)
        .env(
            "WASM_BINDGEN_TEST_WEBDRIVER_JSON",
            root.join("web/webdriver.json"),
        )
        .env("WASM_BINDGEN_TEST_TIMEOUT", "60")
        .env_remove("CHROMEDRIVER")
        .env_remove("GECKODRIVER");
    command
}
