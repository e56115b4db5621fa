//! `greeter-server`: serves the Greeter and the web page on one port until Ctrl-C or SIGTERM.

use greeter_server::{bind, serve, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load();
    grpc_serve::logging::init(config.serve.log_format);
    let listener = bind(&config).await?;
    tracing::info!(
        "listening on http://{} (native gRPC, gRPC-Web, WebSockets and the page)",
        listener.local_addr()?
    );
    serve(listener, &config, grpc_serve::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
