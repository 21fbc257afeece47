//! `call-levels`: each live call's audio level per side, a few times a second, for the Calls panel's meters.
//!
//! One task per call (started on `call_started`) taps the recorder's live feed
//! ([`LiveTaps`](crate::recording::listen_in::LiveTaps)) only while the window is visible, drains it without
//! waiting at each tick, and sends the loudest sample of the last interval per side in dBFS. When it falls
//! behind the feed it drops the missed audio (the next tick measures fresh audio); it ends with the call.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::broadcast::error::TryRecvError;

use crate::audio::mulaw;
use crate::recording::listen_in::LiveAudio;
use crate::recording::wav_writer::Side;
use crate::services::Services;

/// Tauri event carrying one [`CallLevels`].
pub const CALL_LEVELS: &str = "call-levels";
/// How often the meters move.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// The floor of the meters: silence reads as this.
pub const FLOOR_DB: f32 = -60.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallLevels {
    pub call_sid: String,
    pub caller_db: f32,
    pub agent_db: f32,
}

/// The loudest sample per side since the last [`Meter::take`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Meter {
    caller: u16,
    agent: u16,
}

impl Meter {
    pub fn add(&mut self, side: Side, mulaw_bytes: &[u8]) {
        let peak = mulaw_bytes
            .iter()
            .map(|&b| mulaw::decode(b).unsigned_abs())
            .max()
            .unwrap_or(0);
        let slot = match side {
            Side::Caller => &mut self.caller,
            Side::Agent => &mut self.agent,
        };
        *slot = (*slot).max(peak);
    }

    /// `(caller_db, agent_db)` of the interval, and a fresh start.
    pub fn take(&mut self) -> (f32, f32) {
        let levels = (to_dbfs(self.caller), to_dbfs(self.agent));
        *self = Meter::default();
        levels
    }
}

/// A peak as dBFS (0 = full scale), never below [`FLOOR_DB`].
pub fn to_dbfs(peak: u16) -> f32 {
    if peak == 0 {
        return FLOOR_DB;
    }
    let db = 20.0 * (f32::from(peak) / 32768.0).log10();
    db.clamp(FLOOR_DB, 0.0)
}

fn window_visible(app: &AppHandle) -> bool {
    app.get_webview_window("main")
        .and_then(|w| w.is_visible().ok())
        .unwrap_or(false)
}

/// Meters `call_sid` until it is no longer live.
pub async fn meter_call(app: AppHandle, services: Arc<Services>, call_sid: String) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut feed = None;
    let mut meter = Meter::default();
    let mut ticks = 0u32;
    let mut seen = false;
    loop {
        ticker.tick().await;
        ticks = ticks.saturating_add(1);
        let live = services
            .active_calls()
            .iter()
            .any(|c| c.call_sid == call_sid);
        // Ends with the call (giving a call a couple of seconds to show up in the registry).
        if !live && (seen || ticks > 10) {
            break;
        }
        seen |= live;
        if !window_visible(&app) {
            // Nobody sees the meters: let go of the feed (the call's audio path never waits for us anyway).
            feed = None;
            continue;
        }
        let Some(rx) = feed.as_mut() else {
            feed = services.recordings.recorder().live().subscribe(&call_sid);
            meter = Meter::default();
            continue;
        };
        loop {
            match rx.try_recv() {
                Ok(LiveAudio::Audio { side, mulaw, .. }) => meter.add(side, &mulaw),
                Ok(LiveAudio::Clear { .. }) => {}
                // Fell behind: what was missed is gone; measure what comes next.
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => {
                    feed = None;
                    break;
                }
            }
        }
        let (caller_db, agent_db) = meter.take();
        let _ = app.emit(
            CALL_LEVELS,
            CallLevels {
                call_sid: call_sid.clone(),
                caller_db,
                agent_db,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_become_dbfs_per_side_and_reset() {
        let mut m = Meter::default();
        // μ-law 0xFF is silence (0), 0x80 is the loudest positive sample (32124), 0x00 the loudest negative.
        m.add(Side::Caller, &[0xFF, 0x80, 0xFF]);
        m.add(Side::Agent, &[0xFF, 0xFF]);
        let (caller, agent) = m.take();
        assert!(caller > -0.5 && caller <= 0.0, "{caller}");
        assert_eq!(agent, FLOOR_DB);
        m.add(Side::Agent, &[0x00]);
        let (caller, agent) = m.take();
        assert_eq!(caller, FLOOR_DB, "the interval was reset");
        assert!(agent > -0.5, "{agent}");
    }

    #[test]
    fn dbfs_is_clamped() {
        assert_eq!(to_dbfs(0), FLOOR_DB);
        assert_eq!(to_dbfs(1), FLOOR_DB);
        assert!((to_dbfs(16384) - (-6.02)).abs() < 0.01);
        assert_eq!(to_dbfs(u16::MAX), 0.0);
    }
}
