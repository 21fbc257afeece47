// The outbound form (what `place_call` is sent), and what the UI knows of the calls' Twilio status:
// the latest `call_status` per call and the answering-machine verdict (`machine_detection`). Pure, so
// it is unit-tested.

import { e164Problem, normalizeE164 } from './phone';
import { instructionsProblem, maxTokensProblem, speedProblem } from './session';
import type {
  CallEvent,
  GreetingPolicy,
  MachinePolicy,
  PlaceCallRequest,
  ReasoningEffort,
  Voice,
} from './types';

// ---- The form ----

/**
 * What the Outbound panel edits. Text fields are kept as typed; `''` (or `'session'`) means "unset":
 * the override is left out of the request and the app's session setting applies.
 */
export interface OutboundForm {
  /** The number as typed (formatted or not). */
  to: string;
  from: string;
  model: string;
  voice: Voice | '';
  reasoning_effort: ReasoningEffort | '';
  /** As typed; `''`: the session's speed. */
  speed: string;
  /** `'session'`: the session's limit; `'inf'`: unlimited; `'limit'`: `max_tokens`. */
  max_tokens_mode: 'session' | 'inf' | 'limit';
  max_tokens: string;
  /** `''`: the app's default for calls it places (wait for the person to speak). */
  greeting: GreetingPolicy | '';
  opening_line: string;
  instructions: string;
  record: boolean;
  twilio_recording: boolean;
  detect_machines: boolean;
  machine_policy: MachinePolicy;
  voicemail_message: string;
}

/** The form as it opens: every override unset, and `OutboundRequest`'s own defaults for the rest. */
export function defaultOutboundForm(): OutboundForm {
  return {
    to: '',
    from: '',
    model: '',
    voice: '',
    reasoning_effort: '',
    speed: '',
    max_tokens_mode: 'session',
    max_tokens: '1024',
    greeting: '',
    opening_line: '',
    instructions: '',
    record: true,
    twilio_recording: false,
    detect_machines: true,
    machine_policy: 'hang_up',
    voicemail_message: '',
  };
}

export type BuiltRequest =
  | { ok: true; request: PlaceCallRequest; errors: Record<string, never> }
  | { ok: false; request: null; errors: Record<string, string> };

/**
 * The `place_call` request for `form`, or the problems (field → message) that stop it. Unset overrides
 * are left out, so the session's settings apply; ranges are checked as `SessionConfig::validate` does.
 */
export function buildPlaceCallRequest(form: OutboundForm): BuiltRequest {
  const errors: Record<string, string> = {};
  const to = normalizeE164(form.to);
  const toProblem = e164Problem(form.to);
  if (toProblem) errors.to = toProblem;
  const from = form.from.trim();
  if (!from) errors.from = 'Choose one of your Twilio numbers to call from.';

  const request: PlaceCallRequest = { to, from, record: form.record, twilio_recording: form.twilio_recording, detect_machines: form.detect_machines };
  if (form.detect_machines) {
    request.machine_policy = form.machine_policy;
    const message = form.voicemail_message.trim();
    if (form.machine_policy === 'voicemail' && message) request.voicemail_message = message;
  }

  const model = form.model.trim();
  if (model) request.model = model;
  if (form.voice) request.voice = form.voice;
  if (form.reasoning_effort) request.reasoning_effort = form.reasoning_effort;

  if (form.speed.trim() !== '') {
    const speed = Number(form.speed.trim());
    const problem = speedProblem(speed);
    if (problem) errors.speed = problem;
    else request.speed = speed;
  }

  if (form.max_tokens_mode === 'inf') {
    request.max_output_tokens = 'inf';
  } else if (form.max_tokens_mode === 'limit') {
    const text = form.max_tokens.trim();
    const n = text === '' ? Number.NaN : Number(text);
    const problem = maxTokensProblem(n);
    if (problem) errors.max_output_tokens = problem;
    else request.max_output_tokens = n;
  }

  if (form.greeting) {
    request.greeting = form.greeting;
    const line = form.opening_line.trim();
    if (form.greeting === 'speak_first' && line) request.opening_line = line;
  }

  const instructions = form.instructions.trim();
  if (instructions) {
    const problem = instructionsProblem(instructions);
    if (problem) errors.instructions = problem;
    else request.instructions = instructions;
  }

  return Object.keys(errors).length > 0 ? { ok: false, request: null, errors } : { ok: true, request, errors: {} };
}

/**
 * One line for the collapsed overrides: what differs from the session and from the defaults, e.g.
 * "voice cedar, speed 1.2, Twilio recording"; `null` when nothing does.
 */
export function overridesSummary(form: OutboundForm): string | null {
  const parts: string[] = [];
  if (form.model.trim()) parts.push(`model ${form.model.trim()}`);
  if (form.voice) parts.push(`voice ${form.voice}`);
  if (form.reasoning_effort) parts.push(`reasoning ${form.reasoning_effort}`);
  if (form.speed.trim()) parts.push(`speed ${form.speed.trim()}`);
  if (form.max_tokens_mode === 'inf') parts.push('unlimited tokens');
  if (form.max_tokens_mode === 'limit') parts.push(`max ${form.max_tokens.trim() || '?'} tokens`);
  if (form.greeting === 'speak_first') parts.push('agent speaks first');
  if (form.instructions.trim()) parts.push('own instructions');
  if (!form.record) parts.push('not recorded');
  if (form.twilio_recording) parts.push('Twilio recording');
  if (!form.detect_machines) parts.push('no machine detection');
  else if (form.machine_policy === 'voicemail') parts.push('voicemail on machines');
  else if (form.machine_policy === 'continue') parts.push('talks to machines');
  return parts.length > 0 ? parts.join(', ') : null;
}

/** The overrides put back to unset, keeping who is called and from where. */
export function resetOverrides(form: OutboundForm): OutboundForm {
  return { ...defaultOutboundForm(), to: form.to, from: form.from };
}

// ---- Call progress ----

export interface CallProgress {
  call_sid: string;
  status: string;
  answered_by: string | null;
  duration_secs: number | null;
  /** What answering-machine detection decided, and what the app did about it. */
  detection: { answered_by: string; action: string } | null;
  at_ms: number;
}

export type ProgressState = Readonly<Record<string, CallProgress>>;

/** Calls older than this many are forgotten (oldest first), so a long session does not grow without end. */
export const MAX_TRACKED = 200;

/** Twilio statuses after which nothing more happens. */
const FINAL = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled']);

export function isFinalStatus(status: string): boolean {
  return FINAL.has(status);
}

/** True when Twilio's `AnsweredBy` means nobody picked up. */
export function isMachine(answeredBy: string | null | undefined): boolean {
  return !!answeredBy && (answeredBy.startsWith('machine') || answeredBy === 'fax');
}

/** Words for the verdict: `machine_end_beep` + `voicemail` → "Answering machine: leaving the voicemail". */
export function describeDetection(d: { answered_by: string; action: string }): string {
  const who = isMachine(d.answered_by)
    ? d.answered_by === 'fax'
      ? 'Fax machine'
      : 'Answering machine'
    : d.answered_by === 'human'
      ? 'A person'
      : 'Not sure who';
  const what =
    d.action === 'hang_up'
      ? 'hung up'
      : d.action === 'voicemail'
        ? 'leaving the voicemail'
        : d.action === 'continue'
          ? 'the agent carries on'
          : d.action === 'wait'
            ? 'waiting for the beep'
            : d.action;
  return `${who} answered (${d.answered_by}): ${what}`;
}

function trim(state: Record<string, CallProgress>): Record<string, CallProgress> {
  const sids = Object.keys(state);
  if (sids.length <= MAX_TRACKED) return state;
  const oldest = new Set(sids.sort((a, b) => (state[a]?.at_ms ?? 0) - (state[b]?.at_ms ?? 0)).slice(0, sids.length - MAX_TRACKED));
  return Object.fromEntries(Object.entries(state).filter(([sid]) => !oldest.has(sid)));
}

/** Applies one bus event; events other than `call_status` and `machine_detection` leave the state alone. */
export function applyProgress(state: ProgressState, event: CallEvent): ProgressState {
  const prev = state[event.call_sid];
  const base: CallProgress = prev ?? {
    call_sid: event.call_sid,
    status: 'queued',
    answered_by: null,
    duration_secs: null,
    detection: null,
    at_ms: event.at_ms,
  };
  switch (event.type) {
    case 'call_status': {
      // A late `ringing` must not undo `completed` (Twilio's callbacks can arrive out of order).
      if (prev && isFinalStatus(prev.status) && !isFinalStatus(event.status)) return state;
      return trim({
        ...state,
        [event.call_sid]: {
          ...base,
          status: event.status,
          answered_by: event.answered_by ?? base.answered_by,
          duration_secs: event.duration_secs ?? base.duration_secs,
          at_ms: event.at_ms,
        },
      });
    }
    case 'machine_detection':
      return trim({
        ...state,
        [event.call_sid]: {
          ...base,
          answered_by: event.answered_by,
          detection: { answered_by: event.answered_by, action: event.action },
          at_ms: Math.max(base.at_ms, event.at_ms),
        },
      });
    default:
      return state;
  }
}
