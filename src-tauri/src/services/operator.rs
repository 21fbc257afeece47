//! The operator's desk: whispering to the agent, taking a live call over with the microphone, and
//! handing it back. The one implementation both doors (`/api/call/{sid}/…` and the window's commands)
//! call; the call's own task does the work on the line (`calls::bridge::operator`).
//!
//! One microphone, one held call: the desk owns the open microphone while the operator holds a call,
//! and lets it go when the call is handed back, ends, or the microphone stops (it watches the call
//! events for that, so a hold the call ended on its own never keeps the device open).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{info, warn};

use super::ServiceError;
use crate::audio::microphone::{self, MicFrame, Microphone, MicrophoneError};
use crate::calls::registry::{CallControl, CallRegistry, OperatorRefusal};
use crate::events::{CallEvent, EventBus};
use crate::recording::Library;
use crate::store::StoreHandle;
use crate::types::now_ms;

/// The longest whisper, in characters: a note, not a new persona (that is the session's instructions).
pub const MAX_WHISPER_CHARS: usize = 2000;
/// How long a call's task has to answer a command (it answers between two frames).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Microphone frames queued between the device and the call (200 ms): a stalled call loses the
/// newest audio rather than delaying everything after it.
const MIC_QUEUE: usize = 10;

/// Why the desk turned a command down.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("you already hold call {0}: hand it back first (one microphone, one call)")]
    Busy(String),
    #[error(transparent)]
    Refused(#[from] OperatorRefusal),
    #[error("{0}; the agent keeps the call")]
    Microphone(#[from] MicrophoneError),
    #[error("the call did not answer in time")]
    NoAnswer,
}

/// What the window shows of the operator's hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorState {
    pub call_sid: String,
    /// The microphone.
    pub device: String,
    /// When the operator took over (Unix ms).
    pub since_ms: i64,
    /// Muted (push-to-talk released): the caller hears silence.
    pub muted: bool,
    /// The microphone's peak level, -60 (quiet) to 0 dBFS.
    pub level_db: f32,
    /// The delay the device reports before audio reaches the app.
    pub device_latency_ms: Option<u64>,
    /// The operator hears the call (listen-in runs on it).
    pub listening: bool,
}

/// An open microphone as the desk uses it (the device, or a synthetic one in tests).
pub trait MicControls: Send {
    fn device(&self) -> String;
    fn level_db(&self) -> f32;
    fn set_muted(&self, muted: bool);
    fn muted(&self) -> bool;
    fn device_latency(&self) -> Option<Duration>;
}

impl MicControls for Microphone {
    fn device(&self) -> String {
        self.device.clone()
    }
    fn level_db(&self) -> f32 {
        Microphone::level_db(self)
    }
    fn set_muted(&self, muted: bool) {
        Microphone::set_muted(self, muted)
    }
    fn muted(&self) -> bool {
        Microphone::muted(self)
    }
    fn device_latency(&self) -> Option<Duration> {
        Microphone::device_latency(self)
    }
}

struct Held {
    call_sid: String,
    since_ms: i64,
    mic: Box<dyn MicControls>,
}

/// See the module docs. One per running core.
pub struct OperatorDesk {
    registry: CallRegistry,
    store: StoreHandle,
    recordings: Arc<Library>,
    held: Mutex<Option<Held>>,
}

impl OperatorDesk {
    /// The desk, watching `bus` to let the microphone go when a held call ends on its own.
    pub fn new(
        registry: CallRegistry,
        store: StoreHandle,
        recordings: Arc<Library>,
        bus: &EventBus,
    ) -> Arc<Self> {
        let desk = Arc::new(OperatorDesk {
            registry,
            store,
            recordings,
            held: Mutex::new(None),
        });
        tokio::spawn(watch(Arc::downgrade(&desk), bus.subscribe()));
        desk
    }

    fn lock(&self) -> MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The operator's hold, if they hold a call.
    pub fn state(&self) -> Option<OperatorState> {
        let listening = self.recordings.listening().map(|l| l.call_sid);
        self.lock().as_ref().map(|held| OperatorState {
            call_sid: held.call_sid.clone(),
            device: held.mic.device(),
            since_ms: held.since_ms,
            muted: held.mic.muted(),
            level_db: held.mic.level_db(),
            device_latency_ms: held.mic.device_latency().map(|d| d.as_millis() as u64),
            listening: listening.as_deref() == Some(held.call_sid.as_str()),
        })
    }

    /// The microphones, default first.
    pub async fn input_devices(&self) -> Vec<String> {
        tokio::task::spawn_blocking(microphone::input_devices)
            .await
            .unwrap_or_default()
    }

    /// Tells the agent something the caller does not hear; with `say_now` the agent also says it now.
    pub async fn whisper(
        &self,
        call_sid: &str,
        text: &str,
        say_now: bool,
    ) -> Result<(), ServiceError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ServiceError::Invalid("a whisper needs some text".into()));
        }
        if text.chars().count() > MAX_WHISPER_CHARS {
            return Err(ServiceError::Invalid(format!(
                "a whisper is at most {MAX_WHISPER_CHARS} characters; change the session's instructions for more"
            )));
        }
        let text = text.to_string();
        self.command(call_sid, |done| CallControl::Whisper {
            text,
            say_now,
            done,
        })
        .await
    }

    /// Takes the call over with `device` (the default microphone if `None`). No microphone is a
    /// clear error and the call goes on with the agent.
    pub async fn take_over(
        &self,
        call_sid: &str,
        device: Option<&str>,
    ) -> Result<OperatorState, ServiceError> {
        self.check_free(call_sid)?;
        self.check_live(call_sid).await?;
        let (tx, rx) = mpsc::channel(MIC_QUEUE);
        let wanted = device.map(str::to_string);
        // Opening a device can take a while (a sound server waking up): not on the runtime's threads.
        let mic = tokio::task::spawn_blocking(move || microphone::open(wanted.as_deref(), tx))
            .await
            .map_err(|_| {
                OperatorError::Microphone(MicrophoneError::Unusable(
                    "the microphone thread failed".into(),
                ))
            })?
            .map_err(OperatorError::Microphone)?;
        self.take_over_with(call_sid, Box::new(mic), rx).await
    }

    /// What [`OperatorDesk::take_over`] does once the microphone is open (its frames arrive on
    /// `audio`); tests call it with a synthetic microphone.
    pub async fn take_over_with(
        &self,
        call_sid: &str,
        mic: Box<dyn MicControls>,
        audio: mpsc::Receiver<MicFrame>,
    ) -> Result<OperatorState, ServiceError> {
        let device = mic.device();
        {
            let mut held = self.lock();
            if let Some(h) = held.as_ref() {
                return Err(busy_or_held(&h.call_sid, call_sid));
            }
            *held = Some(Held {
                call_sid: call_sid.to_string(),
                since_ms: now_ms(),
                mic,
            });
        }
        let taken = self
            .command(call_sid, |done| CallControl::TakeOver {
                device,
                audio,
                done,
            })
            .await;
        if let Err(e) = taken {
            self.release(call_sid);
            return Err(e);
        }
        info!(%call_sid, "the operator holds the call");
        // The operator must hear the caller: listen-in on this call, unless it already runs.
        let listening = self.recordings.listening().map(|l| l.call_sid);
        if listening.as_deref() != Some(call_sid) {
            if let Err(e) = self.recordings.listen_in(call_sid, None).await {
                warn!(%call_sid, "could not start listen-in for the operator: {e}");
            }
        }
        self.state()
            .filter(|s| s.call_sid == call_sid)
            .ok_or_else(|| ServiceError::AlreadyEnded(call_sid.to_string()))
    }

    /// Gives the call back to the agent.
    pub async fn hand_back(&self, call_sid: &str) -> Result<(), ServiceError> {
        let holds = self.lock().as_ref().map(|h| h.call_sid.clone());
        if holds.as_deref() != Some(call_sid) {
            self.check_live(call_sid).await?;
            return Err(OperatorError::Refused(OperatorRefusal::NotHeld).into());
        }
        let handed = self
            .command(call_sid, |done| CallControl::HandBack { done })
            .await;
        self.release(call_sid);
        handed
    }

    /// Mutes or unmutes the microphone (push-to-talk): muted, the caller hears silence.
    pub fn set_muted(&self, muted: bool) -> Result<OperatorState, ServiceError> {
        {
            let held = self.lock();
            let held = held
                .as_ref()
                .ok_or(OperatorError::Refused(OperatorRefusal::NotHeld))?;
            held.mic.set_muted(muted);
        }
        self.state()
            .ok_or_else(|| OperatorError::Refused(OperatorRefusal::NotHeld).into())
    }

    fn check_free(&self, call_sid: &str) -> Result<(), ServiceError> {
        match self.lock().as_ref() {
            Some(h) => Err(busy_or_held(&h.call_sid, call_sid)),
            None => Ok(()),
        }
    }

    /// A live call, or why not: unknown, or ended.
    async fn check_live(&self, call_sid: &str) -> Result<(), ServiceError> {
        if self.registry.is_live(call_sid) {
            return Ok(());
        }
        Err(self.not_live(call_sid).await)
    }

    async fn not_live(&self, call_sid: &str) -> ServiceError {
        match self.store.call(call_sid).await {
            Ok(Some(_)) => ServiceError::AlreadyEnded(call_sid.to_string()),
            Ok(None) => ServiceError::UnknownCall(call_sid.to_string()),
            Err(e) => e.into(),
        }
    }

    /// Sends a command to the call's task and waits for its answer.
    async fn command(
        &self,
        call_sid: &str,
        make: impl FnOnce(oneshot::Sender<Result<(), OperatorRefusal>>) -> CallControl,
    ) -> Result<(), ServiceError> {
        let (done, answer) = oneshot::channel();
        if !self.registry.control(call_sid, make(done)) {
            return Err(self.not_live(call_sid).await);
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(outcome)) => outcome.map_err(|r| OperatorError::Refused(r).into()),
            // The call ended before it got to the command.
            Ok(Err(_)) => Err(ServiceError::AlreadyEnded(call_sid.to_string())),
            Err(_) => Err(OperatorError::NoAnswer.into()),
        }
    }

    /// Lets the microphone of `call_sid`'s hold go (closing a device joins its thread: not on the
    /// runtime's threads).
    fn release(&self, call_sid: &str) {
        let released = {
            let mut held = self.lock();
            match held.as_ref() {
                Some(h) if h.call_sid == call_sid => held.take(),
                _ => None,
            }
        };
        if let Some(held) = released {
            info!(call_sid = %held.call_sid, "the operator's microphone is closed");
            tokio::task::spawn_blocking(move || drop(held));
        }
    }
}

fn busy_or_held(holds: &str, wanted: &str) -> ServiceError {
    if holds == wanted {
        OperatorError::Refused(OperatorRefusal::AlreadyHeld).into()
    } else {
        OperatorError::Busy(holds.to_string()).into()
    }
}

/// Lets the microphone go when the held call goes back to the agent or ends without the desk asking
/// (the microphone stopped, the call's time was up, the caller hung up).
async fn watch(desk: Weak<OperatorDesk>, mut events: broadcast::Receiver<CallEvent>) {
    loop {
        let ended = match events.recv().await {
            Ok(
                CallEvent::OperatorHandedBack { call_sid, .. }
                | CallEvent::CallEnded { call_sid, .. },
            ) => Some(call_sid),
            Ok(_) => None,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Events were missed: whatever is held must still be live.
                let Some(desk) = desk.upgrade() else { return };
                let held = desk.lock().as_ref().map(|h| h.call_sid.clone());
                held.filter(|sid| !desk.registry.is_live(sid))
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Some(call_sid) = ended {
            let Some(desk) = desk.upgrade() else { return };
            desk.release(&call_sid);
        }
    }
}
