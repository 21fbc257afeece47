//! Ending every call at once: what "Quit" (tray or window) does after the user confirms; and whether the
//! core may be restarted with new settings now.

use std::time::Duration;

use super::Services;
use crate::calls::registry::CallControl;
use crate::realtime::session::SessionConfig;

/// The core cannot restart while calls are live: a restart would drop them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "saved; the new settings apply when the {live} live call(s) have ended and you apply again"
)]
pub struct RestartRefused {
    pub live: usize,
}

impl Services {
    /// Before a restart with new settings: refused while any call is live, else the session config the
    /// new core must keep (edited at run time, like `PUT /api/settings/session`, and not in any file).
    pub fn prepare_restart(&self) -> Result<SessionConfig, RestartRefused> {
        match self.registry.active_count() {
            0 => Ok(self.session_config()),
            live => Err(RestartRefused { live }),
        }
    }

    /// Asks every live call to hang up; returns the call SIDs that were asked.
    pub fn hang_up_all(&self) -> Vec<String> {
        self.registry
            .active()
            .into_iter()
            .filter(|c| self.registry.control(&c.call_sid, CallControl::HangUp))
            .map(|c| c.call_sid)
            .collect()
    }

    /// Waits until no call is live, polling every 50 ms; `false` if some are still live at `timeout`.
    pub async fn wait_for_no_calls(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.registry.active_count() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn hang_up_all_ends_a_live_demo_call() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::on_free_ports(dir.path());
        let running = crate::app::start(config).await.unwrap();
        let services = running.services.clone();
        assert!(services.hang_up_all().is_empty());
        assert!(services.wait_for_no_calls(Duration::from_millis(10)).await);
        let call = services.start_demo_call().await.unwrap();
        // The call registers once the model session is up.
        let live = tokio::time::timeout(Duration::from_secs(10), async {
            while services.active_calls().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(live.is_ok(), "the demo call went live");
        let refused = services.prepare_restart().unwrap_err();
        assert_eq!(refused.live, 1);
        assert!(refused.to_string().contains("1 live call(s)"), "{refused}");
        assert_eq!(services.hang_up_all(), vec![call.call_sid]);
        assert!(services.wait_for_no_calls(Duration::from_secs(5)).await);
        assert_eq!(services.prepare_restart(), Ok(services.session_config()));
        running.shutdown().await;
    }
}
