//! The desktop's handle on the core: starting, running or failed, shared by the commands.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use super::CommandError;
use crate::app::Running;
use crate::services::Services;

#[derive(Clone)]
enum Phase {
    Starting,
    Ready(Arc<Services>),
    Failed(Arc<str>),
    Stopped,
}

/// Managed as Tauri state from the first moment, so commands can be called before the core is up.
pub struct Core {
    phase: watch::Sender<Phase>,
    /// Kept so the server can be stopped on exit (dropping it would stop the server too early).
    running: Mutex<Option<Running>>,
}

impl Default for Core {
    fn default() -> Self {
        Self::new()
    }
}

impl Core {
    pub fn new() -> Self {
        Core {
            phase: watch::Sender::new(Phase::Starting),
            running: Mutex::new(None),
        }
    }

    /// Records a started core; waiting commands go on.
    pub fn started(&self, running: Running) {
        let services = running.services.clone();
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = Some(running);
        self.phase.send_replace(Phase::Ready(services));
    }

    /// Records why the core is not running; waiting commands fail with `reason`.
    pub fn failed(&self, reason: String) {
        self.phase.send_replace(Phase::Failed(reason.into()));
    }

    /// The running core's services, waiting while it starts.
    pub async fn services(&self) -> Result<Arc<Services>, CommandError> {
        let mut phase = self.phase.subscribe();
        let settled = phase
            .wait_for(|p| !matches!(p, Phase::Starting))
            .await
            .map(|p| p.clone());
        match settled {
            Ok(Phase::Ready(services)) => Ok(services),
            Ok(Phase::Failed(reason)) => Err(CommandError::NotRunning(reason.to_string())),
            Ok(Phase::Starting | Phase::Stopped) | Err(_) => Err(CommandError::ShuttingDown),
        }
    }

    /// The running core's services right now, without waiting.
    pub fn current(&self) -> Option<Arc<Services>> {
        match &*self.phase.borrow() {
            Phase::Ready(services) => Some(services.clone()),
            _ => None,
        }
    }

    /// Stops the core's server for a restart: commands wait (as at start-up) instead of failing.
    pub async fn stop_for_restart(&self) {
        self.phase.send_replace(Phase::Starting);
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            running.shutdown().await;
        }
    }

    /// Stops the core's server, if it runs. Later commands fail with [`CommandError::ShuttingDown`].
    pub async fn shutdown(&self) {
        self.phase.send_replace(Phase::Stopped);
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            running.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn commands_wait_for_start_and_report_a_failed_start() {
        let core = Arc::new(Core::new());
        let waiting = tokio::spawn({
            let core = core.clone();
            async move { core.services().await.map(|_| ()).map_err(|e| e.to_string()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "a command waits while the core starts"
        );
        core.failed("cannot bind 127.0.0.1:8081: Address in use".into());
        let err = waiting.await.unwrap().unwrap_err();
        assert_eq!(err, "cannot bind 127.0.0.1:8081: Address in use");
        let err = core
            .services()
            .await
            .err()
            .expect("a failed core has no services");
        let json = serde_json::to_string(&err).unwrap();
        // Both doors' error shape: a stable code and the reason.
        assert_eq!(
            json,
            r#"{"code":"not_running","message":"cannot bind 127.0.0.1:8081: Address in use"}"#
        );
    }

    #[tokio::test]
    async fn a_started_core_serves_commands_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::on_free_ports(dir.path());
        let core = Core::new();
        core.started(crate::app::start(config).await.unwrap());
        let services = core.services().await.unwrap();
        assert!(services.status().local_url.starts_with("http://127.0.0.1:"));
        assert!(services.status().api_url.starts_with("http://127.0.0.1:"));
        let err = services.end_call("CA0").await.unwrap_err();
        assert!(err.to_string().contains("CA0"));
        core.shutdown().await;
        assert!(matches!(
            core.services().await,
            Err(CommandError::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn a_restart_makes_commands_wait_for_the_new_core() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::on_free_ports(dir.path());
        let core = Arc::new(Core::new());
        assert!(core.current().is_none(), "nothing runs before the start");
        core.started(crate::app::start(config.clone()).await.unwrap());
        assert!(core.current().is_some());
        core.stop_for_restart().await;
        assert!(core.current().is_none());
        let waiting = tokio::spawn({
            let core = core.clone();
            async move { core.services().await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "commands wait during a restart");
        core.started(crate::app::start(config).await.unwrap());
        assert!(waiting.await.unwrap(), "and go on with the new core");
        core.shutdown().await;
    }
}
