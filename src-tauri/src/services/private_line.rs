//! A private line into a running core: the same calls, library, event bus and session settings, but its
//! own loopback port, its own Twilio token and its own model. The demo call rings one so that nothing
//! is sent to Twilio or OpenAI. The composition root (`app`) opens lines: it owns the router,
//! which lives above the services.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Services;
use crate::realtime::client::ModelConnector;
use crate::types::Secret;

/// What differs on a private line.
pub struct LineSpec {
    /// Signs the line's Twilio requests; never used anywhere else.
    pub twilio_token: Secret,
    /// The model its calls talk to.
    pub connector: Arc<dyn ModelConnector>,
}

/// A door being served, until [`Served::close`].
pub struct Served {
    local_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Served {
    pub fn new(local_addr: SocketAddr, stop: oneshot::Sender<()>, task: JoinHandle<()>) -> Self {
        Served {
            local_addr,
            stop,
            task,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for open requests (webhooks, media sockets) to finish.
    pub async fn close(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Opens private lines into a core.
pub trait LineOpener: Send + Sync {
    /// A line into `core` on a fresh loopback port.
    fn open(&self, core: &Arc<Services>, spec: LineSpec) -> std::io::Result<Served>;
}
