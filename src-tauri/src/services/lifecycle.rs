//! Ending every call at once: what "Quit" (tray or window) does after the user confirms.

use std::time::Duration;

use super::Services;
use crate::calls::registry::CallControl;

impl Services {
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
        let config = Config {
            port: 0,
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let running = crate::services::start(config).await.unwrap();
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
        assert_eq!(services.hang_up_all(), vec![call.call_sid]);
        assert!(services.wait_for_no_calls(Duration::from_secs(5)).await);
        running.shutdown().await;
    }
}
