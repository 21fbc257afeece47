// The only module that talks to the Rust side. Commands are `verbio::desktop::commands::*` and
// `verbio::desktop::call_commands::*` (outbound calls, webhooks, recordings, playback, listen-in); each
// rejects with `{code, message}` (an `ErrorBody`: the same code `/api` answers for the same failure; read
// it with `errorCode`/`errorMessage` from './format'). Tauri itself rejects with a plain string (a missing
// command, arguments of the wrong shape). Tauri maps the Rust arguments' snake_case names to the camelCase
// keys used here. `isMissingCommand` recognises a build without a command, so the panels can say so.

import { invoke, isTauri } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type {
  ActiveCall,
  AppStatus,
  BasicSettings,
  Budget,
  CallCost,
  CallLatency,
  DailyStat,
  PriceTable,
  SummaryRecord,
  CallEvent,
  CallLevels,
  ChannelChoice,
  DemoCall,
  DesktopAlert,
  DesktopInfo,
  ModelChoices,
  OpenAiCheck,
  PhoneNumber,
  PlaceCallRequest,
  PlacedCall,
  ListenState,
  McpServerStatus,
  OperatorState,
  PendingApproval,
  Peaks,
  PlaybackEvent,
  PlaybackState,
  RecordingDetail,
  RecordingItem,
  GeneratedKey,
  SecretKind,
  SecretStatus,
  SessionConfig,
  Side,
  ToolCallRecord,
  ToolInfo,
  ToolSecret,
  ToolSecretStatus,
  TranscriptRecord,
  TwilioCheck,
  WebhookSetup,
} from './types';
import { errorBody } from './format';

export type { ErrorBody } from './format';


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
/** Audio levels of live calls (dBFS per side), five times a second while the window is visible. */
export const CALL_LEVELS = 'call-levels';
/** The recording playing through the speakers: position, finished, stopped. */
export const PLAYBACK_POSITION = 'playback-position';
/** The tray or a notification asked to show a call (payload: `{call_sid, take_over}`). */
export const SHOW_CALL = 'show-call';

export { isTauri };

/** True when `error` says the command does not exist in this build (a service not merged yet). */
export function isMissingCommand(error: unknown): boolean {
  if (errorBody(error)) {
    return false; // the command ran and failed
  }
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

/** Makes a new local API key in the keychain; the key comes back this once. */
export function generateApiKey(): Promise<GeneratedKey> {
  return invoke<GeneratedKey>('generate_api_key');
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

/**
 * Quit, as the tray's Quit does: exits at once without live calls, otherwise the core emits `confirm-quit`
 * (see `onConfirmQuit`) and the window asks before calling `quitApp()`.
 */
export async function requestQuit(): Promise<void> {
  await invoke('request_quit');
}

/** Hangs up every live call and quits. */
export async function quitApp(): Promise<void> {
  await invoke('quit_app');
}

// ---- Outbound calls and the Twilio number's webhooks ----

export function placeCall(request: PlaceCallRequest): Promise<PlacedCall> {
  return invoke<PlacedCall>('place_call', { request });
}

export function phoneNumbers(): Promise<PhoneNumber[]> {
  return invoke<PhoneNumber[]>('phone_numbers');
}

/** Hands a live call to a person (`to`, or the session's transfer number); resolves to the number dialled. */
export function transferCall(callSid: string, to?: string): Promise<string> {
  return invoke<string>('transfer_call', { callSid, to: to ?? null });
}

export function webhookSetup(): Promise<WebhookSetup> {
  return invoke<WebhookSetup>('webhook_setup');
}

/** The one-time choice: point `numberSid` at the app now and on every start (`auto`), or do it by hand. */
export function chooseWebhookMode(auto: boolean, numberSid: string | null): Promise<WebhookSetup> {
  return invoke<WebhookSetup>('choose_webhook_mode', { auto, numberSid });
}

// ---- Recordings, playback and listen-in ----

/** One page of recordings, newest first; `q` searches the transcripts. */
export function recordings(q: string | null, limit: number, offset: number): Promise<RecordingItem[]> {
  return invoke<RecordingItem[]>('recordings', { q, limit, offset });
}

export function recording(id: number): Promise<RecordingDetail> {
  return invoke<RecordingDetail>('recording', { id });
}

export function callRecordings(callSid: string): Promise<RecordingItem[]> {
  return invoke<RecordingItem[]>('call_recordings', { callSid });
}

export function recordingPeaks(id: number, buckets: number): Promise<Peaks> {
  return invoke<Peaks>('recording_peaks', { id, buckets });
}

export async function deleteRecording(id: number, deleteTwilio: boolean): Promise<void> {
  await invoke('delete_recording', { id, deleteTwilio });
}

/** Copies the recording to `path` (absolute, `.wav`); resolves to the bytes written. */
/** Where an export goes unless the user picks another place (Downloads, a name saying which call). */
export function suggestedExportPath(id: number): Promise<string | null> {
  return invoke<string | null>('suggested_export_path', { id });
}

export function exportRecording(id: number, path: string): Promise<number> {
  return invoke<number>('export_recording', { id, path });
}

export function playbackPlay(id: number, channel: ChannelChoice, device?: string | null): Promise<PlaybackState> {
  return invoke<PlaybackState>('playback_play', { id, channel, device: device ?? null });
}

export function playbackPause(paused: boolean): Promise<PlaybackState> {
  return invoke<PlaybackState>('playback_pause', { paused });
}

export function playbackSeek(positionMs: number): Promise<PlaybackState> {
  return invoke<PlaybackState>('playback_seek', { positionMs: Math.max(0, Math.round(positionMs)) });
}

export async function playbackStop(): Promise<void> {
  await invoke('playback_stop');
}

export function playbackState(): Promise<PlaybackState | null> {
  return invoke<PlaybackState | null>('playback_state');
}

export function audioDevices(): Promise<string[]> {
  return invoke<string[]>('audio_devices');
}

/** Starts hearing a live call on `device` (the default output when absent). */
export function listenIn(callSid: string, device?: string | null): Promise<ListenState> {
  return invoke<ListenState>('listen_in', { callSid, device: device ?? null });
}

export function listenMute(side: Side, muted: boolean): Promise<ListenState> {
  return invoke<ListenState>('listen_mute', { side, muted });
}

/** The listen-in now (its delay follows the audio), or null when nobody listens. */
export function listenState(): Promise<ListenState | null> {
  return invoke<ListenState | null>('listen_state');
}

export async function listenStop(): Promise<void> {
  await invoke('listen_stop');
}

// ---- The operator in the loop: whisper, take over, hand back (`verbio::services::operator`) ----

/** A private instruction to the agent; `sayNow` has the agent say it at once, in its own voice. */
export async function operatorWhisper(callSid: string, text: string, sayNow: boolean): Promise<void> {
  await invoke('operator_whisper', { callSid, text, sayNow });
}

/** Takes the call over with the microphone `device` (`null`: the system default). */
export function operatorTakeOver(callSid: string, device: string | null): Promise<OperatorState> {
  return invoke<OperatorState>('operator_take_over', { callSid, device });
}

/**
 * Opens the microphone `device` ahead of a take-over (the core keeps it open two minutes), so taking over
 * does not wait for the device to start.
 */
export async function operatorPrepare(device: string | null): Promise<void> {
  await invoke('operator_prepare', { device });
}

export async function operatorHandBack(callSid: string): Promise<void> {
  await invoke('operator_hand_back', { callSid });
}

/** Mutes (push-to-talk released) or opens the operator's microphone to the caller. */
export function operatorMute(muted: boolean): Promise<OperatorState> {
  return invoke<OperatorState>('operator_mute', { muted });
}

/** The call the operator holds now (with the microphone's level), or null. */
export function operatorState(): Promise<OperatorState | null> {
  return invoke<OperatorState | null>('operator_state');
}

/** The microphones, the system default first. */
export function inputDevices(): Promise<string[]> {
  return invoke<string[]>('input_devices');
}

// ---- Tools that do real work: approvals, the tool log, MCP servers (`verbio::services::tools`) ----

/** Tool calls waiting for the operator's answer, oldest first. */
export function toolsPending(): Promise<PendingApproval[]> {
  return invoke<PendingApproval[]>('tools_pending');
}

/** Approves or declines a waiting tool call (`not_pending` once answered or timed out). */
export async function toolDecide(callSid: string, callId: string, approved: boolean): Promise<void> {
  await invoke('tool_decide', { callSid, callId, approved });
}

/** A call's tool log. */
export function toolLog(callSid: string): Promise<ToolCallRecord[]> {
  return invoke<ToolCallRecord[]>('tool_log', { callSid });
}

/** Each MCP server of the session: starting, ready (with every tool it lists) or failed (with why). */
export function mcpStatuses(): Promise<McpServerStatus[]> {
  return invoke<McpServerStatus[]>('mcp_statuses');
}

/** Whether HTTP tool `name` signs its requests, and where its secret comes from (never the value). */
export function toolSecretStatus(name: string): Promise<ToolSecretStatus> {
  return invoke<ToolSecretStatus>('tool_secret_status', { name });
}

/**
 * The secret HTTP tool `name`'s requests are signed with, made (and kept in the keychain) if it has none yet:
 * to copy to the endpoint, which verifies `X-Verbio-Signature` with it.
 */
export function toolSecret(name: string): Promise<ToolSecret> {
  return invoke<ToolSecret>('tool_secret', { name });
}

// ---- What each call cost and how fast it felt (issue 15) ----

/** A call's turn latency as heard: every answered turn, p50/p95/max, and its barge-ins. */
export function callLatency(callSid: string): Promise<CallLatency> {
  return invoke<CallLatency>('call_latency', { callSid });
}

/** What a call cost so far, by source. */
export function callCost(callSid: string): Promise<CallCost> {
  return invoke<CallCost>('call_cost', { callSid });
}

/** The library per day for the last `days` days, oldest first, every day present. */
export function dailyStats(days: number): Promise<DailyStat[]> {
  return invoke<DailyStat[]>('daily_stats', { days });
}

export function getPrices(): Promise<PriceTable> {
  return invoke<PriceTable>('get_prices');
}

/** Replaces the price table; rejects with `invalid_prices`. */
export function setPrices(table: PriceTable): Promise<PriceTable> {
  return invoke<PriceTable>('set_prices', { table });
}

export function getBudget(): Promise<Budget> {
  return invoke<Budget>('get_budget');
}

/** Saves the budgets (`spent_today_usd` is ignored); rejects with `invalid_budget`. */
export function setBudget(budget: Budget): Promise<Budget> {
  return invoke<Budget>('set_budget', { budget });
}

/** A call's post-call summary, or null when there is none (yet). */
export function callSummary(callSid: string): Promise<SummaryRecord | null> {
  return invoke<SummaryRecord | null>('call_summary', { callSid });
}

/** Makes the call's summary again (after a failed or invalid one); resolves to the new record. */
export function rerunSummary(callSid: string): Promise<SummaryRecord> {
  return invoke<SummaryRecord>('rerun_summary', { callSid });
}

// ---- Events ----

export function onCallEvent(handler: (event: CallEvent) => void): Promise<UnlistenFn> {
  return listen<CallEvent>(CALL_EVENT, (e) => handler(e.payload));
}

/** An MCP server's state changed (the core's `mcp-status` event). */
export function onMcpStatus(handler: (status: McpServerStatus) => void): Promise<UnlistenFn> {
  return listen<McpServerStatus>('mcp-status', (e) => handler(e.payload));
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

export function onPlaybackEvent(handler: (event: PlaybackEvent) => void): Promise<UnlistenFn> {
  return listen<PlaybackEvent>(PLAYBACK_POSITION, (e) => handler(e.payload));
}

/** The tray or a notification asked to show a call, with its take-over button focused when `take_over`. */
export function onShowCall(handler: (request: { call_sid: string; take_over: boolean }) => void): Promise<UnlistenFn> {
  return listen<{ call_sid: string; take_over: boolean }>(SHOW_CALL, (e) => handler(e.payload));
}

export function onCallLevels(handler: (levels: CallLevels) => void): Promise<UnlistenFn> {
  return listen<CallLevels>(CALL_LEVELS, (e) => handler(e.payload));
}

/** Where Twilio's voice webhook must point, below the public URL (`verbio::server`'s TwiML route). */
export const TWIML_PATH = '/twiml';
