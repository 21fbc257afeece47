//! The operator's desk: whispering to the agent, taking a live call over with the microphone, and
//! handing it back. The one implementation both doors (`/api/call/{sid}/…` and the window's commands)
//! call; the call's own task does the work on the line (`calls::bridge::operator`).
//!
//! One microphone, one held call. The desk owns the open microphone and routes its frames to the held
//! call (a relay task per microphone; with no hold the frames are dropped). Opening a device takes from
//! tens of milliseconds to seconds (a sound server waking a source), far over the 100 ms a take-over may
//! take, so the microphone stays open ("warm") for [`WARM_FOR`] after a hand-back, and the window opens
//! it ahead of time when the operator looks at a live call ([`OperatorDesk::prepare`]). The desk watches
//! the call events, so a hold the call ended on its own (the microphone stopped, the call ended) is
//! released too.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{info, warn};

use super::ServiceError;
pub use crate::audio::microphone::MicControls;
use crate::audio::microphone::{self, MicFrame, MicrophoneError};
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
/// How long an open microphone stays open with no call held (for the next take-over to be instant).
pub const WARM_FOR: Duration = Duration::from_secs(120);

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

/// The open microphone, held call or not (the window's level meter before a take-over).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MicrophoneState {
    pub device: String,
    pub muted: bool,
    pub level_db: f32,
    pub device_latency_ms: Option<u64>,
}

/// The open microphone and where its frames go.
struct OpenMic {
    /// What was asked for (`None`: the default device), to reuse it for the same choice.
    wanted: Option<String>,
    controls: Box<dyn MicControls>,
    /// The held call's frame channel; `None`: frames are dropped.
    route: Route,
    /// Tells this microphone apart from the next one opened (for its relay and its warm timer).
    generation: u64,
}

type Route = Arc<Mutex<Option<mpsc::Sender<MicFrame>>>>;

struct Hold {
    call_sid: String,
    since_ms: i64,
}

#[derive(Default)]
struct Desk {
    mic: Option<OpenMic>,
    hold: Option<Hold>,
    generation: u64,
    /// The open microphone closes after this if no call holds it (pushed back by every use).
    warm_until: Option<tokio::time::Instant>,
}

/// See the module docs. One per running core.
pub struct OperatorDesk {
    registry: CallRegistry,
    store: StoreHandle,
    recordings: Arc<Library>,
    desk: Mutex<Desk>,
    /// Itself, for the tasks it starts (relays, warm timers).
    me: Weak<OperatorDesk>,
}

impl OperatorDesk {
    /// The desk, watching `bus` to release a hold the call ended on its own.
    pub fn new(
        registry: CallRegistry,
        store: StoreHandle,
        recordings: Arc<Library>,
        bus: &EventBus,
    ) -> Arc<Self> {
        let desk = Arc::new_cyclic(|me| OperatorDesk {
            registry,
            store,
            recordings,
            desk: Mutex::new(Desk::default()),
            me: me.clone(),
        });
        tokio::spawn(watch(Arc::downgrade(&desk), bus.subscribe()));
        desk
    }

    fn lock(&self) -> MutexGuard<'_, Desk> {
        self.desk.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The operator's hold, if they hold a call.
    pub fn state(&self) -> Option<OperatorState> {
        let listening = self.recordings.listening().map(|l| l.call_sid);
        let desk = self.lock();
        let (hold, mic) = (desk.hold.as_ref()?, desk.mic.as_ref()?);
        Some(OperatorState {
            call_sid: hold.call_sid.clone(),
            device: mic.controls.device(),
            since_ms: hold.since_ms,
            muted: mic.controls.muted(),
            level_db: mic.controls.level_db(),
            device_latency_ms: latency_ms(mic.controls.as_ref()),
            listening: listening.as_deref() == Some(hold.call_sid.as_str()),
        })
    }

    /// The open microphone, if one is open (held call or warm).
    pub fn microphone(&self) -> Option<MicrophoneState> {
        self.lock().mic.as_ref().map(|mic| MicrophoneState {
            device: mic.controls.device(),
            muted: mic.controls.muted(),
            level_db: mic.controls.level_db(),
            device_latency_ms: latency_ms(mic.controls.as_ref()),
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

    /// Opens `device` (the default microphone if `None`) ahead of a take-over, so the take-over does not
    /// wait for the device; it stays open for [`WARM_FOR`] unless a call is taken over. An already open
    /// microphone for the same choice is kept.
    pub async fn prepare(&self, device: Option<&str>) -> Result<MicrophoneState, ServiceError> {
        self.open_microphone(device).await?;
        self.arm_warm_timer();
        self.microphone()
            .ok_or_else(|| OperatorError::Microphone(MicrophoneError::NoInputDevice(None)).into())
    }

    /// Takes the call over with `device` (the default microphone if `None`; an open one for the same
    /// choice is used at once). No microphone is a clear error and the call goes on with the agent.
    pub async fn take_over(
        &self,
        call_sid: &str,
        device: Option<&str>,
    ) -> Result<OperatorState, ServiceError> {
        self.check_free(call_sid)?;
        self.check_live(call_sid).await?;
        self.open_microphone(device).await?;
        self.hold(call_sid).await
    }

    /// Makes a microphone opened elsewhere (its frames on `frames`) the open one, as [`Self::prepare`]
    /// does with a device; a later [`Self::take_over`] naming `controls.device()` uses it. Tests and the
    /// benchmark use it with a synthetic microphone.
    pub fn prepare_with(&self, controls: Box<dyn MicControls>, frames: mpsc::Receiver<MicFrame>) {
        self.install(Some(controls.device()), controls, frames);
        self.arm_warm_timer();
    }

    /// Takes the call over with a microphone opened elsewhere (its frames on `frames`); it replaces the
    /// open one. Tests and the benchmark use it with a synthetic microphone.
    pub async fn take_over_with(
        &self,
        call_sid: &str,
        mic: Box<dyn MicControls>,
        frames: mpsc::Receiver<MicFrame>,
    ) -> Result<OperatorState, ServiceError> {
        self.check_free(call_sid)?;
        self.install(Some(mic.device()), mic, frames);
        self.hold(call_sid).await
    }

    /// Gives the call back to the agent.
    pub async fn hand_back(&self, call_sid: &str) -> Result<(), ServiceError> {
        let holds = self.lock().hold.as_ref().map(|h| h.call_sid.clone());
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
            let desk = self.lock();
            match (&desk.hold, &desk.mic) {
                (Some(_), Some(mic)) => mic.controls.set_muted(muted),
                _ => return Err(OperatorError::Refused(OperatorRefusal::NotHeld).into()),
            }
        }
        self.state()
            .ok_or_else(|| OperatorError::Refused(OperatorRefusal::NotHeld).into())
    }

    /// Routes the open microphone to `call_sid` and tells the call to take its frames.
    async fn hold(&self, call_sid: &str) -> Result<OperatorState, ServiceError> {
        let (tx, rx) = mpsc::channel(MIC_QUEUE);
        let device = {
            let mut desk = self.lock();
            if let Some(h) = desk.hold.as_ref() {
                return Err(busy_or_held(&h.call_sid, call_sid));
            }
            let Some(mic) = desk.mic.as_ref() else {
                return Err(OperatorError::Microphone(MicrophoneError::NoInputDevice(None)).into());
            };
            // Unmuted at each take-over: push-to-talk mutes again from the window.
            mic.controls.set_muted(false);
            *mic.route.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
            let device = mic.controls.device();
            desk.hold = Some(Hold {
                call_sid: call_sid.to_string(),
                since_ms: now_ms(),
            });
            device
        };
        let taken = self
            .command(call_sid, |done| CallControl::TakeOver {
                device,
                audio: rx,
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

    /// Opens `wanted` unless it is open already. Opening a device can take a while (a sound server
    /// waking up): not on the runtime's threads.
    async fn open_microphone(&self, wanted: Option<&str>) -> Result<(), ServiceError> {
        let wanted = wanted.map(str::to_string);
        if self
            .lock()
            .mic
            .as_ref()
            .is_some_and(|mic| mic.wanted == wanted)
        {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel(MIC_QUEUE);
        let name = wanted.clone();
        let mic = tokio::task::spawn_blocking(move || microphone::open(name.as_deref(), tx))
            .await
            .map_err(|_| {
                OperatorError::Microphone(MicrophoneError::Unusable(
                    "the microphone thread failed".into(),
                ))
            })?
            .map_err(OperatorError::Microphone)?;
        if self.lock().hold.is_some() {
            // A take-over won the race with another microphone: keep that one.
            tokio::task::spawn_blocking(move || drop(mic));
            return Ok(());
        }
        self.install(wanted, Box::new(mic), rx);
        Ok(())
    }

    /// Makes `controls` the open microphone (closing the previous one) and starts relaying its frames.
    fn install(
        &self,
        wanted: Option<String>,
        controls: Box<dyn MicControls>,
        frames: mpsc::Receiver<MicFrame>,
    ) {
        let route: Route = Arc::default();
        let (previous, generation) = {
            let mut desk = self.lock();
            desk.generation += 1;
            let generation = desk.generation;
            let previous = desk.mic.replace(OpenMic {
                wanted,
                controls,
                route: route.clone(),
                generation,
            });
            (previous, generation)
        };
        close(previous);
        tokio::spawn(relay(frames, route, self.me.clone(), generation));
    }

    fn check_free(&self, call_sid: &str) -> Result<(), ServiceError> {
        match self.lock().hold.as_ref() {
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

    /// Ends the hold of `call_sid`: its frames stop going anywhere; the microphone stays warm.
    fn release(&self, call_sid: &str) {
        {
            let mut desk = self.lock();
            if desk.hold.as_ref().is_none_or(|h| h.call_sid != call_sid) {
                return;
            }
            desk.hold = None;
            if let Some(mic) = &desk.mic {
                mic.route.lock().unwrap_or_else(|p| p.into_inner()).take();
            }
        }
        info!(%call_sid, "the operator's hold ended");
        self.arm_warm_timer();
    }

    /// Closes the open microphone after [`WARM_FOR`] unless a call holds it by then (or it was
    /// replaced).
    fn arm_warm_timer(&self) {
        let until = tokio::time::Instant::now() + WARM_FOR;
        let generation = {
            let mut desk = self.lock();
            let Some(generation) = desk.mic.as_ref().map(|m| m.generation) else {
                return;
            };
            desk.warm_until = Some(until);
            generation
        };
        let me = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(until).await;
            let Some(desk) = me.upgrade() else { return };
            let idle = {
                let mut d = desk.lock();
                let ours = d.mic.as_ref().is_some_and(|m| m.generation == generation);
                // A later use pushed the deadline back: that use's timer decides.
                let due = d
                    .warm_until
                    .is_some_and(|u| u <= tokio::time::Instant::now());
                (ours && due && d.hold.is_none())
                    .then(|| d.mic.take())
                    .flatten()
            };
            if idle.is_some() {
                info!(
                    "the operator's microphone was idle for {} s; closed",
                    WARM_FOR.as_secs()
                );
                close(idle);
            }
        });
    }

    /// Closes the open microphone now (the window's choice, or the app shutting down).
    pub fn close_microphone(&self) {
        let mic = {
            let mut desk = self.lock();
            if desk.hold.is_some() {
                return;
            }
            desk.mic.take()
        };
        close(mic);
    }
}

fn latency_ms(mic: &dyn MicControls) -> Option<u64> {
    mic.device_latency().map(|d| d.as_millis() as u64)
}

/// Closing a device joins its audio thread: not on the runtime's threads.
fn close(mic: Option<OpenMic>) {
    if let Some(mic) = mic {
        mic.route.lock().unwrap_or_else(|p| p.into_inner()).take();
        tokio::task::spawn_blocking(move || drop(mic));
    }
}

/// Moves a microphone's frames to the held call (or drops them when none is). When the microphone
/// stops, the held call's channel closes (the call gives itself back to the agent) and the desk forgets
/// the microphone.
async fn relay(
    mut frames: mpsc::Receiver<MicFrame>,
    route: Route,
    desk: Weak<OperatorDesk>,
    generation: u64,
) {
    while let Some(frame) = frames.recv().await {
        let target = route.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(target) = target {
            // Full: the call is stalled; it loses this frame rather than falling behind.
            let _ = target.try_send(frame);
        }
    }
    route.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(desk) = desk.upgrade() {
        let stopped = {
            let mut d = desk.lock();
            let ours = d.mic.as_ref().is_some_and(|m| m.generation == generation);
            ours.then(|| d.mic.take()).flatten()
        };
        if stopped.is_some() {
            warn!("the operator's microphone stopped");
            close(stopped);
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
                let held = desk.lock().hold.as_ref().map(|h| h.call_sid.clone());
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
