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
