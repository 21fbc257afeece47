// Shapes of what the desktop core sends. They mirror the Rust types that serde serializes:
// `verbio::services::{AppStatus, ActiveCall}` and `verbio::calls::events::CallEvent`.

/** Who said a transcript line: the two sides of the call, the operator who took it over, the operator's
 * private whispers to the agent (stored as `whisper` turns; the caller never hears them), and the tools the
 * agent ran (the tool log's `tool` lines). */
export type Speaker = 'caller' | 'agent' | 'operator' | 'whisper' | 'tool';
/** A side of the call's audio (listen-in mutes, recording channels). */
export type Side = 'caller' | 'agent';

/** `verbio::services::AppStatus`. */
export interface AppStatus {
  /** Twilio's routes on this machine: what a tunnel or proxy forwards to. */
  local_url: string;
  /** The local API (`/api`), loopback only; never reached through the tunnel. */
  api_url: string;
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
  /** From the caller's speech start to Twilio's `clear` being sent (absent in a core before issue 15). */
  reaction_ms?: number | null;
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

/** A Twilio call status callback (`initiated`, `ringing`, `in-progress`, `completed`, `busy`, ...). */
export interface CallStatusEvent {
  type: 'call_status';
  call_sid: string;
  status: string;
  /** `inbound`, `outbound-api`, ... */
  direction: string | null;
  from: string | null;
  to: string | null;
  answered_by: string | null;
  duration_secs: number | null;
  at_ms: number;
}

/** Answering-machine detection decided who answered, and what the app did (`hang_up`, `voicemail`, `continue`). */
export interface MachineDetectionEvent {
  type: 'machine_detection';
  call_sid: string;
  answered_by: string;
  action: string;
  at_ms: number;
}

/** Tokens one model response used (`verbio::calls::events::TokenUsage`). */
export interface TokenUsage {
  input_text: number;
  input_audio: number;
  input_cached: number;
  output_text: number;
  output_audio: number;
}

/** A model response ended: `completed`, `cancelled`, `incomplete` or `failed`, with why and its tokens. */
export interface ResponseDoneEvent {
  type: 'response_done';
  call_sid: string;
  response_id: string | null;
  status: string;
  reason: string | null;
  usage: TokenUsage | null;
  at_ms: number;
}

/** The caps that protect the bill (`verbio::events::CallCap`). */
export type CallCap = 'concurrent_calls' | 'daily_minutes' | 'call_length' | 'call_budget' | 'daily_budget';

/**
 * A cap turned a call away before it streamed (`concurrent_calls`, `daily_minutes`: the caller heard
 * `message`, then the call was hung up) or ended it (`call_length`: the agent said goodbye).
 */
export interface CallCappedEvent {
  type: 'call_capped';
  call_sid: string;
  cap: CallCap;
  message: string;
  from: string | null;
  to: string | null;
  at_ms: number;
}

/** The operator's private instruction to the agent; `say_now` asked the agent to say it at once. */
export interface WhisperEvent {
  type: 'whisper';
  call_sid: string;
  text: string;
  say_now: boolean;
  offset_ms: number;
  at_ms: number;
}

/** The operator took the call over with their microphone (`device`); the agent listens only. */
export interface OperatorTookOverEvent {
  type: 'operator_took_over';
  call_sid: string;
  device: string;
  offset_ms: number;
  at_ms: number;
}

export type HandBackReason = 'operator' | 'microphone_lost' | 'call_ended' | 'time_limit';

/** The agent has the call again; `turns` the operator spoke while holding it. */
export interface OperatorHandedBackEvent {
  type: 'operator_handed_back';
  call_sid: string;
  offset_ms: number;
  turns: number;
  reason: HandBackReason;
  at_ms: number;
}

/** `ok`, `failed`, `declined` (the operator said no, or nobody answered in time) or `cancelled` (the call ended first). */
export type ToolOutcome = 'ok' | 'failed' | 'declined' | 'cancelled';

/** The agent called a tool that does real work; `tool_finished` follows. */
export interface ToolStartedEvent {
  type: 'tool_started';
  call_sid: string;
  call_id: string;
  tool: string;
  /** The model's arguments (JSON text). */
  arguments: string;
  needs_approval: boolean;
  offset_ms: number;
  at_ms: number;
}

/** A tool call waits for the operator's answer until `expires_at_ms`, then it is declined. */
export interface ToolApprovalRequestedEvent {
  type: 'tool_approval_requested';
  call_sid: string;
  call_id: string;
  tool: string;
  arguments: string;
  expires_at_ms: number;
  at_ms: number;
}

/** The operator answered (`by`: `window`, `notification`, `api`), or nobody did in time (`by`: `timeout`). */
export interface ToolApprovalSettledEvent {
  type: 'tool_approval_settled';
  call_sid: string;
  call_id: string;
  approved: boolean;
  by: string;
  at_ms: number;
}

/** A tool call ended: its log line (`output` cut to 2,000 characters here; the model got all of it). */
export interface ToolFinishedEvent extends ToolCallRecord {
  type: 'tool_finished';
  call_sid: string;
}


/**
 * The agent answered a caller turn: from the end of the caller's speech (`offset_ms`, on the call's stream) to
 * the moment the answer started playing at Twilio, split into endpointing wait, model time to the first audio,
 * and the bridge with Twilio's playout.
 */
export interface TurnLatencyEvent {
  type: 'turn_latency';
  call_sid: string;
  offset_ms: number;
  total_ms: number;
  endpointing_ms: number;
  model_ms: number;
  playout_ms: number;
  at_ms: number;
}

/** What a cost is for: the agent's responses, the caller's transcription, or the post-call summary. */
export type CostSource = 'response' | 'transcription' | 'summary';

/** Something on the call was priced: `cost_usd` for it, `call_total_usd` so far; `priced` false: `model` has no price. */
export interface CostEvent {
  type: 'cost';
  call_sid: string;
  source: CostSource;
  model: string;
  cost_usd: number;
  call_total_usd: number;
  priced: boolean;
  at_ms: number;
}

/** The call (or the day) is near its budget: the agent was told to wrap up. */
export interface BudgetWarningEvent {
  type: 'budget_warning';
  call_sid: string;
  scope: 'call' | 'day';
  spent_usd: number;
  cap_usd: number;
  at_ms: number;
}

export type SummaryStatus = 'done' | 'failed' | 'invalid';

/** The post-call summary is ready, or could not be made (`failed`, `invalid`: a visible, non-fatal problem). */
export interface SummaryEvent {
  type: 'summary';
  call_sid: string;
  status: SummaryStatus;
  summary: string | null;
  disposition: string | null;
  fields: Record<string, unknown> | null;
  error: string | null;
  at_ms: number;
}

/** `verbio::calls::events::CallEvent`, tagged by `type`. */
export type CallEvent =
  | CallStarted
  | Transcript
  | BargeIn
  | ModelIssue
  | CallEnded
  | CallStatusEvent
  | MachineDetectionEvent
  | ResponseDoneEvent
  | CallCappedEvent
  | WhisperEvent
  | OperatorTookOverEvent
  | OperatorHandedBackEvent
  | ToolStartedEvent
  | ToolApprovalRequestedEvent
  | ToolApprovalSettledEvent
  | ToolFinishedEvent
  | TurnLatencyEvent
  | CostEvent
  | BudgetWarningEvent
  | SummaryEvent;

/** `verbio::calls::approvals::PendingApproval`: a tool call waiting for the operator. */
export interface PendingApproval {
  call_sid: string;
  call_id: string;
  tool: string;
  arguments: string;
  asked_at_ms: number;
  expires_at_ms: number;
}

/** `verbio::store::tool_calls::ToolCallRecord`: one line of a call's tool log. */
export interface ToolCallRecord {
  call_id: string;
  tool: string;
  arguments: string;
  outcome: ToolOutcome;
  output: string | null;
  error: string | null;
  failure: string | null;
  latency_ms: number;
  approved_by: string | null;
  offset_ms: number;
  at_ms: number;
}

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

/** Where an HTTP tool is POSTed (https, or http on loopback only); `timeout_ms` defaults to 8,000. */
export interface ToolEndpoint {
  url: string;
  timeout_ms?: number;
}

export interface FunctionTool {
  name: string;
  description: string;
  parameters: unknown;
  /** The operator approves each call of it first (absent: no). */
  needs_approval?: boolean;
  /** The user's HTTP endpoint behind the tool; absent or null: nothing behind it yet. */
  endpoint?: ToolEndpoint | null;
}

/** How Verbio reaches an MCP server: a command it starts (stdio) or a streamable HTTP URL. */
export type McpTransport =
  | { type: 'stdio'; command: string; args: string[]; env: Record<string, string> }
  | { type: 'http'; url: string };

/** An MCP server of the session: which of its tools the agent may use, and which need approval. */
export interface McpServer {
  name: string;
  transport: McpTransport;
  allowed_tools: string[];
  needs_approval: string[];
  timeout_ms?: number;
}

/** `verbio::services::tools::McpServerStatus`: `tools` are every tool the server lists. */
export interface McpServerStatus {
  name: string;
  state: 'starting' | 'ready' | 'failed';
  message: string | null;
  tools: McpToolInfo[];
}

/** One tool an MCP server lists (its description may be absent). */
export interface McpToolInfo {
  name: string;
  description?: string | null;
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
  /** Where the built-in `transfer_call` tool and the Transfer button send the caller (E.164); absent: no transfer tool. */
  transfer_number?: string | null;
  /** How long a tool call waits for the operator's approval before it is declined (5–300 s, default 30). */
  tool_approval_timeout_secs?: number;
  /** MCP servers whose allowed tools the agent may use (absent in a core without MCP). */
  mcp_servers?: McpServer[];
  /** The post-call summary (absent in a core without it). */
  summary?: SummaryConfig;
}

/** The post-call summary's settings: a disposition from `dispositions`, and `fields_schema` (a JSON object schema). */
export interface SummaryConfig {
  enabled: boolean;
  model: string;
  dispositions: string[];
  fields_schema: Record<string, unknown>;
  instructions: string;
}

/** `verbio::secrets::ToolSecretStatus`: whether an HTTP tool signs its requests (never the value). */
export interface ToolSecretStatus {
  tool: string;
  env_var: string;
  source: 'env' | 'keychain' | 'missing';
  masked: string | null;
}

/** `verbio::services::tools::ToolSecret`: a tool's signing secret, to copy to its endpoint. */
export interface ToolSecret {
  tool: string;
  secret: string;
  /** Overrides the keychain (for `verbio serve`). */
  env_var: string;
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

/** `verbio::secrets::GeneratedKey`: a key Verbio just made, shown once (afterwards only masked). */
export interface GeneratedKey {
  key: string;
  status: SecretStatus;
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

export type TunnelChoice = 'ngrok' | 'none';

/** `verbio::settings_file::BasicSettings`: `null` leaves a key alone, `''` removes it. */
export interface BasicSettings {
  public_url: string | null;
  twilio_account_sid: string | null;
  tunnel?: TunnelChoice | '' | null;
  ngrok_domain?: string | null;
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
  kind: 'incoming_call' | 'call_answered' | 'machine_answered' | 'call_ended' | 'error' | 'tool_approval';
  title: string;
  body: string;
  call_sid: string | null;
  /** The tool call a `tool_approval` asks about. */
  call_id?: string;
  native: boolean;
}

/** `verbio::store::TranscriptRecord`. */
export interface TranscriptRecord {
  speaker: Speaker;
  text: string;
  offset_ms: number;
  interrupted?: boolean;
}

// ---- Outbound calls: `verbio::services::outbound`, `verbio::services::webhooks`. ----

export type MachinePolicy = 'hang_up' | 'voicemail' | 'continue';
export type GreetingPolicy = 'wait_for_caller' | 'speak_first';

/** `OutboundRequest` (unknown keys are refused). */
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
  opening_line?: string;
  record?: boolean;
  twilio_recording?: boolean;
  detect_machines?: boolean;
  machine_policy?: MachinePolicy;
  voicemail_message?: string;
}

/** `PlacedCall`. */
export interface PlacedCall {
  call_sid: string;
  status: string;
  to: string;
  from: string;
}

/** `PhoneNumber`: one of the account's numbers. */
export interface PhoneNumber {
  sid: string;
  phone_number: string;
  friendly_name: string | null;
  voice_url: string | null;
}

/** `WebhookSetup`: what to paste into Twilio's console, and the remembered choice. */
export interface WebhookSetup {
  public_url: string | null;
  voice_url: string | null;
  status_callback_url: string | null;
  mode: 'auto' | 'manual' | null;
  number_sid: string | null;
  tunnel: 'ngrok' | 'public_url' | null;
}

// ---- Recordings: `verbio::store::recordings`, `verbio::recording::{library, peaks, playback, listen_in}`. ----

/** `RecordingRecord`. */
export interface RecordingItem {
  id: number;
  call_sid: string;
  /** `local` (the app's WAV) or `twilio` (Twilio's copy). */
  source: string;
  file_name: string;
  /** `recording`, `complete`, `incomplete`, ... */
  status: string;
  note: string | null;
  started_at_ms: number;
  duration_ms: number;
  channels: number;
  sample_rate: number;
  size_bytes: number;
  twilio_sid: string | null;
  direction: string | null;
  from_number: string | null;
  to_number: string | null;
  /** What the call cost, when known (absent in a core before issue 15). */
  cost_usd?: number | null;
  /** The call's p95 turn latency, when it had answered turns. */
  p95_ms?: number | null;
}

/** `RecordingDetail`: the record, flattened, plus its transcript (and its post-call summary). */
export interface RecordingDetail extends RecordingItem {
  transcript: TranscriptRecord[];
  summary?: SummaryRecord | null;
}

/** `Peaks`: per bucket, the caller's and the agent's peak (0–1). */
export interface Peaks {
  duration_ms: number;
  buckets: [number, number][];
}

export type ChannelChoice = 'both' | 'caller' | 'agent';

/** `PlaybackState`. */
export interface PlaybackState {
  recording_id: number;
  position_ms: number;
  duration_ms: number;
  paused: boolean;
  channel: ChannelChoice;
}

/** `PlaybackEvent`, sent as `playback-position`. */
export type PlaybackEvent =
  | { type: 'position'; recording_id: number; position_ms: number; duration_ms: number; paused: boolean }
  | { type: 'finished'; recording_id: number }
  | { type: 'stopped'; recording_id: number };

/** `ListenState`. */
export interface ListenState {
  call_sid: string;
  device: string;
  caller_muted: boolean;
  agent_muted: boolean;
  delay_ms: number;
}

/** `verbio::services::operator::OperatorState`: the call the operator holds with their microphone. */
export interface OperatorState {
  call_sid: string;
  /** The microphone's name. */
  device: string;
  /** Unix ms when the operator took over. */
  since_ms: number;
  /** Push-to-talk released or muted: the caller hears silence. */
  muted: boolean;
  /** The microphone's peak level, -60 (floor) … 0 dBFS. */
  level_db: number;
  device_latency_ms: number | null;
  /** The operator hears the call (the core starts listen-in on it when taking over). */
  listening: boolean;
}

/** Audio levels of a live call: dBFS per side. */
export interface CallLevels {
  call_sid: string;
  caller_db: number;
  agent_db: number;
}

// ---- What each call cost and how fast it felt (issue 15). ----

/** One answered turn as stored (`at_ms` may be absent in stored turns). */
export interface TurnLatencyRecord {
  offset_ms: number;
  total_ms: number;
  endpointing_ms: number;
  model_ms: number;
  playout_ms: number;
  at_ms?: number;
}

/** One barge-in as stored: where on the stream, how fast the agent stopped, how much of its answer was heard. */
export interface BargeInRecord {
  offset_ms: number;
  reaction_ms: number | null;
  heard_ms: number;
}

/** `call_latency`: a call's turn latency as heard (`null` figures: no answered turn yet). */
export interface CallLatency {
  p50_ms: number | null;
  p95_ms: number | null;
  max_ms: number | null;
  turns: TurnLatencyRecord[];
  barge_ins?: BargeInRecord[];
  interruptions?: number;
}

/** `call_cost`: what a call cost so far; `priced` false when some model had no price (`unpriced_models`). */
export interface CallCost {
  total_usd: number;
  priced: boolean;
  unpriced_models: string[];
  by_source: Record<CostSource, number>;
}

/** `daily_stats`: one day of the library (every day present, oldest first). */
export interface DailyStat {
  day: string;
  calls: number;
  minutes: number;
  cost_usd: number;
  p95_ms: number | null;
}

/** One model's prices, USD per 1M tokens (`audio_per_minute` for models billed by the minute, such as whisper-1). */
export interface ModelPrice {
  text_input: number;
  text_cached_input: number;
  text_output: number;
  audio_input: number;
  audio_cached_input: number;
  audio_output: number;
  audio_per_minute: number | null;
  note: string | null;
}

/** The dated price table calls are priced from (`get_prices`, `set_prices`). */
export interface PriceTable {
  as_of: string;
  source: string;
  currency: 'USD';
  models: Record<string, ModelPrice>;
}

/** `get_budget` / `set_budget`: caps in USD (`null`: none); `spent_today_usd` is read only. */
export interface Budget {
  call_usd: number | null;
  daily_usd: number | null;
  wrap_up_percent: number;
  goodbye: string;
  spent_today_usd: number;
}

/** A call's post-call summary as stored (`call_summary`, `rerun_summary`, `RecordingDetail.summary`). */
export interface SummaryRecord {
  call_sid: string;
  status: SummaryStatus;
  summary: string | null;
  disposition: string | null;
  fields: Record<string, unknown> | null;
  error: string | null;
  model: string | null;
  input_tokens: number | null;
  cached_tokens: number | null;
  output_tokens: number | null;
  latency_ms: number | null;
  at_ms: number;
}
