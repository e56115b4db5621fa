//! A `grpc-serve` server running in the test's own process, on the port it was bound to: stopped
//! by [`InProcess::stop`], which waits for the drain, or by dropping it, which does not wait.

use std::net::SocketAddr;

use tokio::{sync::oneshot, task::JoinHandle};

/// A server serving in a task of this process.
pub struct InProcess {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl InProcess {
    /// Binds `server`'s address (port 0 for a free one) and serves it until stopped.
    pub async fn start(server: grpc_serve::Server) -> Self {
        let listener = server
            .bind()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// `http://` and the address, with no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().expect("stopped once").send(());
        self.task.take().expect("stopped once").await.unwrap();
    }
}

impl Drop for InProcess {
    /// Begins the shutdown, as a signal would: the listener closes and open connections are
    /// told to finish, so a client sees the server go away.
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
