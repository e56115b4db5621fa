//! Logs to standard output, as people or log collectors read them: one line per call from the call
//! gate, and the server's own events. `RUST_LOG` sets the level (default: info).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::options::LogFormat;

/// Installs the global subscriber in `format`. Colours for a terminal only: in a file or a log
/// collector they are noise.
pub fn init(format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}
