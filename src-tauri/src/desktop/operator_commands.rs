//! Tauri commands for the operator in the loop (issue 13): whisper to the agent, take a call over with a
//! microphone, hand it back. One line each into [`OperatorDesk`](crate::services::operator::OperatorDesk)
//! (`services.operator`), which `/api/call/{sid}/{whisper,takeover,handback}` use too. No logic lives here.

use tauri::State;

use super::commands::Res;
use super::Core;
use crate::services::operator::{MicrophoneState, OperatorState};
use crate::types::CallSid;

/// A private instruction to the agent; `say_now` has the agent say it at once.
#[tauri::command]
pub async fn operator_whisper(
    core: State<'_, Core>,
    call_sid: CallSid,
    text: String,
    say_now: bool,
) -> Res<()> {
    Ok(core
        .services()
        .await?
        .operator
        .whisper(&call_sid, &text, say_now)
        .await?)
}

/// Takes the call over with the microphone `device` (`None`: the system default).
#[tauri::command]
pub async fn operator_take_over(
    core: State<'_, Core>,
    call_sid: CallSid,
    device: Option<String>,
) -> Res<OperatorState> {
    Ok(core
        .services()
        .await?
        .operator
        .take_over(&call_sid, device.as_deref())
        .await?)
}

/// Opens the microphone `device` ahead of a take-over (it stays open two minutes), so taking over
/// does not wait for the device.
#[tauri::command]
pub async fn operator_prepare(
    core: State<'_, Core>,
    device: Option<String>,
) -> Res<MicrophoneState> {
    Ok(core
        .services()
        .await?
        .operator
        .prepare(device.as_deref())
        .await?)
}

#[tauri::command]
pub async fn operator_hand_back(core: State<'_, Core>, call_sid: CallSid) -> Res<()> {
    Ok(core.services().await?.operator.hand_back(&call_sid).await?)
}

/// Mutes the operator's microphone (push-to-talk released) or opens it to the caller.
#[tauri::command]
pub async fn operator_mute(core: State<'_, Core>, muted: bool) -> Res<OperatorState> {
    Ok(core.services().await?.operator.set_muted(muted)?)
}

/// The call the operator holds (with the microphone's level), or `None`.
#[tauri::command]
pub async fn operator_state(core: State<'_, Core>) -> Res<Option<OperatorState>> {
    Ok(core.services().await?.operator.state())
}

/// The microphones, the system default first.
#[tauri::command]
pub async fn input_devices(core: State<'_, Core>) -> Res<Vec<String>> {
    Ok(core.services().await?.operator.input_devices().await)
}
