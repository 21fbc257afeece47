// Shapes of what the desktop core sends. They mirror the Rust types that serde serializes:
// `verbio::services::{AppStatus, ActiveCall}` and `verbio::calls::events::CallEvent`.

export type Speaker = 'caller' | 'agent';

/** `verbio::services::AppStatus`. */
export interface AppStatus {
  local_url: string;
  public_url: string | null;
  stream_url: string | null;
  model: string;
  active_calls: number;
}

/** `verbio::services::ActiveCall`. */
export interface ActiveCall {
  call_sid: string;
  stream_sid: string;
  from: string | null;
  to: string | null;
  started_at_ms: number;
}

export interface CallStarted {
  type: 'call_started';
  call_sid: string;
  stream_sid: string;
  from: string | null;
  to: string | null;
  at_ms: number;
}

export interface Transcript {
  type: 'transcript';
  call_sid: string;
  speaker: Speaker;
  text: string;
  offset_ms: number;
  interrupted: boolean;
  at_ms: number;
}

export interface BargeIn {
  type: 'barge_in';
  call_sid: string;
  item_id: string;
  heard_ms: number;
  at_ms: number;
}

export interface ModelIssue {
  type: 'model_issue';
  call_sid: string;
  code: string;
  message: string;
  at_ms: number;
}

export interface CallEnded {
  type: 'call_ended';
  call_sid: string;
  reason: string;
  failed: boolean;
  at_ms: number;
}

/** `verbio::calls::events::CallEvent`, tagged by `type`. */
export type CallEvent = CallStarted | Transcript | BargeIn | ModelIssue | CallEnded;

// ---- Session configuration: `verbio::realtime::session::SessionConfig` (serde shapes). ----

export type Voice =
  | 'alloy'
  | 'ash'
  | 'ballad'
  | 'coral'
  | 'echo'
  | 'sage'
  | 'shimmer'
  | 'verse'
  | 'marin'
  | 'cedar';
export type ReasoningEffort = 'minimal' | 'low' | 'medium' | 'high' | 'xhigh';
export type Eagerness = 'low' | 'medium' | 'high' | 'auto';
export type NoiseReduction = 'near_field' | 'far_field';

export type TurnDetection =
  | { type: 'server_vad'; threshold: number; prefix_padding_ms: number; silence_duration_ms: number }
  | { type: 'semantic_vad'; eagerness: Eagerness };

export type Greeting = { mode: 'wait_for_caller' } | { mode: 'speak_first'; opening_line: string };

export interface FunctionTool {
  name: string;
  description: string;
  parameters: unknown;
}

export interface SessionConfig {
  model: string;
  voice: Voice;
  instructions: string;
  max_output_tokens: number | 'inf';
  transcription: { model: string; language?: string } | null;
  turn_detection: TurnDetection;
  noise_reduction: NoiseReduction | null;
  reasoning_effort: ReasoningEffort | null;
  speed: number;
  tools: FunctionTool[];
  greeting: Greeting;
}

/** `verbio::services::ToolInfo`. */
export interface ToolInfo {
  name: string;
  description: string;
  built_in: boolean;
}

/** `verbio::onboarding::ModelChoices`. */
export interface ModelChoices {
  models: string[];
  live: boolean;
  note: string | null;
}

// ---- Secrets and onboarding: `verbio::secrets`, `verbio::onboarding`, `verbio::settings_file`. ----

export type SecretKind = 'openai_api_key' | 'twilio_auth_token' | 'ngrok_authtoken' | 'local_api_key';

export interface SecretStatus {
  kind: SecretKind;
  label: string;
  env_var: string;
  source: 'env' | 'keychain' | 'missing';
  masked: string | null;
}

export interface OpenAiCheck {
  realtime_models: string[];
  model_count: number;
}

export interface TwilioCheck {
  account_sid: string;
  friendly_name: string;
  status: string;
  account_type: string;
}

export interface BasicSettings {
  public_url: string | null;
  twilio_account_sid: string | null;
}

export interface DemoCall {
  call_sid: string;
  from: string;
  to: string;
}

export interface DesktopInfo {
  notifications: boolean;
  tray: boolean;
}

/** `verbio::desktop::alerts::Alert`. */
export interface DesktopAlert {
  kind: 'incoming_call' | 'machine_answered' | 'call_ended' | 'error';
  title: string;
  body: string;
  call_sid: string | null;
  native: boolean;
}

/** `verbio::store::TranscriptRecord`. */
export interface TranscriptRecord {
  speaker: Speaker;
  text: string;
  offset_ms: number;
  interrupted?: boolean;
}

// ---- Outbound calls (issue 4's planned services; wired by the lead at merge). ----

export type MachinePolicy = 'hang_up' | 'voicemail' | 'continue';
export type GreetingPolicy = 'wait_for_caller' | 'speak_first';

export interface PlaceCallRequest {
  to: string;
  from: string;
  instructions?: string;
  voice?: Voice;
  model?: string;
  reasoning_effort?: ReasoningEffort;
  speed?: number;
  max_output_tokens?: number | 'inf';
  greeting?: GreetingPolicy;
  record: boolean;
  machine_policy: MachinePolicy;
  voicemail_message?: string;
}

export interface PlacedCall {
  call_sid: string;
  status: string;
}

export interface PhoneNumber {
  sid: string;
  phone_number: string;
  friendly_name: string;
}

/** A call status event on the bus (issue 4). */
export interface CallStatusEvent {
  call_sid: string;
  status: string;
  answered_by?: string | null;
  duration_secs?: number | null;
}

// ---- Recordings (issue 5's planned services; wired by the lead at merge). ----

export interface RecordingItem {
  id: string;
  call_sid: string;
  direction: 'inbound' | 'outbound' | string;
  from: string | null;
  to: string | null;
  started_at_ms: number;
  duration_ms: number;
  channels: number;
  size_bytes: number;
  source: 'local' | 'twilio';
  incomplete_reason?: string | null;
}

export interface RecordingPage {
  items: RecordingItem[];
  total: number;
}

export interface RecordingTurn {
  speaker: Speaker;
  text: string;
  offset_ms: number;
}

export interface RecordingDetail extends RecordingItem {
  transcript: RecordingTurn[];
}

export type PlaybackChannels = 'both' | 'caller' | 'agent';

/** Playback position events (issue 5). */
export interface PlaybackPosition {
  id: string;
  position_ms: number;
  playing: boolean;
}

/** Audio levels of a live call (planned with listen-in, issue 5): dBFS per side. */
export interface CallLevels {
  call_sid: string;
  caller_db: number;
  agent_db: number;
}
