// The only module that talks to the Rust side. Commands are `verbio::desktop::commands::*`; each rejects
// with a plain error string. Outbound calls (issue 4) and recordings (issue 5) are typed against their
// planned service shapes; until their commands are registered they reject with Tauri's "not found" error,
// which `isMissingCommand` recognises so the panels can say so.

import { invoke, isTauri } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type {
  ActiveCall,
  AppStatus,
  BasicSettings,
  CallEvent,
  CallLevels,
  CallStatusEvent,
  DemoCall,
  DesktopAlert,
  DesktopInfo,
  ModelChoices,
  OpenAiCheck,
  PhoneNumber,
  PlaceCallRequest,
  PlacedCall,
  PlaybackChannels,
  PlaybackPosition,
  RecordingDetail,
  RecordingPage,
  SecretKind,
  SecretStatus,
  SessionConfig,
  ToolInfo,
  TranscriptRecord,
  TwilioCheck,
} from './types';

/** Every `CallEvent` of the core, forwarded as it happens. */
export const CALL_EVENT = 'call-event';
/** The forwarder fell behind and dropped this many events; re-sync with `activeCalls()`. */
export const CALL_EVENTS_SKIPPED = 'call-events-skipped';
/** The core (re)started: re-read its status. */
export const CORE_RESTARTED = 'core-restarted';
/** An alert (also a system notification where a notification server runs). */
export const DESKTOP_ALERT = 'desktop-alert';
/** Quit was asked for while calls are live; the payload is how many. */
export const CONFIRM_QUIT = 'confirm-quit';
/** Planned (issue 4): call status changes. */
export const CALL_STATUS = 'call-status';
/** Planned (issue 5): audio levels of live calls, a few times a second. */
export const CALL_LEVELS = 'call-levels';
/** Planned (issue 5): playback position. */
export const PLAYBACK_POSITION = 'playback-position';

export { isTauri };

/** True when `error` says the command does not exist in this build (a service not merged yet). */
export function isMissingCommand(error: unknown): boolean {
  const text = typeof error === 'string' ? error : error instanceof Error ? error.message : '';
  return /command .* not found|not allowed|unknown command/i.test(text);
}

/** Resolves once the core has started; rejects with the reason it could not. */
export function appStatus(): Promise<AppStatus> {
  return invoke<AppStatus>('app_status');
}

export function activeCalls(): Promise<ActiveCall[]> {
  return invoke<ActiveCall[]>('active_calls');
}

export async function hangUp(callSid: string): Promise<void> {
  await invoke('hang_up', { callSid });
}

export function transcriptions(callSid: string): Promise<TranscriptRecord[]> {
  return invoke<TranscriptRecord[]>('transcriptions', { callSid });
}

// ---- Session ----

export function sessionConfig(): Promise<SessionConfig> {
  return invoke<SessionConfig>('session_config');
}

export function updateSessionConfig(session: SessionConfig): Promise<SessionConfig> {
  return invoke<SessionConfig>('update_session_config', { session });
}

export function voices(): Promise<string[]> {
  return invoke<string[]>('voices');
}

export function tools(): Promise<ToolInfo[]> {
  return invoke<ToolInfo[]>('tools');
}

export function modelChoices(): Promise<ModelChoices> {
  return invoke<ModelChoices>('model_choices');
}

// ---- Onboarding ----

export function secretsStatus(): Promise<SecretStatus[]> {
  return invoke<SecretStatus[]>('secrets_status');
}

export function setSecret(kind: SecretKind, value: string): Promise<SecretStatus> {
  return invoke<SecretStatus>('set_secret', { kind, value });
}

export function deleteSecret(kind: SecretKind): Promise<SecretStatus> {
  return invoke<SecretStatus>('delete_secret', { kind });
}

export function checkOpenai(): Promise<OpenAiCheck> {
  return invoke<OpenAiCheck>('check_openai');
}

export function checkTwilio(accountSid: string): Promise<TwilioCheck> {
  return invoke<TwilioCheck>('check_twilio', { accountSid });
}

export function basicSettings(): Promise<BasicSettings> {
  return invoke<BasicSettings>('basic_settings');
}

export async function saveBasicSettings(settings: BasicSettings): Promise<void> {
  await invoke('save_basic_settings', { settings });
}

/** Restarts the core with the saved keys and settings. */
export async function applySettings(): Promise<void> {
  await invoke('apply_settings');
}

export function startDemoCall(): Promise<DemoCall> {
  return invoke<DemoCall>('start_demo_call');
}

export function desktopInfo(): Promise<DesktopInfo> {
  return invoke<DesktopInfo>('desktop_info');
}

/** Hangs up every live call and quits. */
export async function quitApp(): Promise<void> {
  await invoke('quit_app');
}

// ---- Outbound calls (issue 4) ----

export function placeCall(request: PlaceCallRequest): Promise<PlacedCall> {
  return invoke<PlacedCall>('place_call', { request });
}

export function phoneNumbers(): Promise<PhoneNumber[]> {
  return invoke<PhoneNumber[]>('phone_numbers');
}

export async function transferCall(callSid: string, to?: string): Promise<void> {
  await invoke('transfer_call', { callSid, to: to ?? null });
}

// ---- Recordings and listening (issue 5) ----

export function recordings(q: string | null, limit: number, offset: number): Promise<RecordingPage> {
  return invoke<RecordingPage>('recordings', { q, limit, offset });
}

export function recording(id: string): Promise<RecordingDetail> {
  return invoke<RecordingDetail>('recording', { id });
}

export function recordingPeaks(id: string, buckets: number): Promise<number[]> {
  return invoke<number[]>('recording_peaks', { id, buckets });
}

export async function deleteRecording(id: string, deleteTwilio: boolean): Promise<void> {
  await invoke('delete_recording', { id, deleteTwilio });
}

export async function exportRecording(id: string, path: string): Promise<void> {
  await invoke('export_recording', { id, path });
}

export async function playbackPlay(id: string, channels: PlaybackChannels, device?: string): Promise<void> {
  await invoke('playback_play', { id, channels, device: device ?? null });
}

export async function playbackPause(): Promise<void> {
  await invoke('playback_pause');
}

export async function playbackSeek(ms: number): Promise<void> {
  await invoke('playback_seek', { ms });
}

export async function playbackStop(): Promise<void> {
  await invoke('playback_stop');
}

export async function listenIn(callSid: string, on: boolean, muteCaller: boolean, muteAgent: boolean): Promise<void> {
  await invoke('listen_in', { callSid, on, muteCaller, muteAgent });
}

// ---- Events ----

export function onCallEvent(handler: (event: CallEvent) => void): Promise<UnlistenFn> {
  return listen<CallEvent>(CALL_EVENT, (e) => handler(e.payload));
}

export function onEventsSkipped(handler: (skipped: number) => void): Promise<UnlistenFn> {
  return listen<number>(CALL_EVENTS_SKIPPED, (e) => handler(e.payload));
}

export function onCoreRestarted(handler: () => void): Promise<UnlistenFn> {
  return listen<null>(CORE_RESTARTED, () => handler());
}

export function onDesktopAlert(handler: (alert: DesktopAlert) => void): Promise<UnlistenFn> {
  return listen<DesktopAlert>(DESKTOP_ALERT, (e) => handler(e.payload));
}

export function onConfirmQuit(handler: (liveCalls: number) => void): Promise<UnlistenFn> {
  return listen<number>(CONFIRM_QUIT, (e) => handler(e.payload));
}

export function onCallStatus(handler: (event: CallStatusEvent) => void): Promise<UnlistenFn> {
  return listen<CallStatusEvent>(CALL_STATUS, (e) => handler(e.payload));
}

export function onPlaybackPosition(handler: (event: PlaybackPosition) => void): Promise<UnlistenFn> {
  return listen<PlaybackPosition>(PLAYBACK_POSITION, (e) => handler(e.payload));
}

export function onCallLevels(handler: (levels: CallLevels) => void): Promise<UnlistenFn> {
  return listen<CallLevels>(CALL_LEVELS, (e) => handler(e.payload));
}

/** Where Twilio's voice webhook must point, below the public URL (`verbio::server`'s TwiML route). */
export const TWIML_PATH = '/twiml';
