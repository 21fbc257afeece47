// Folds the core's `call-event` stream into per-call view state. Pure and immutable: every change
// returns a new state object, so the UI can hold it in `$state.raw` and tests can compare values.

import { formatUsd } from './insight';
import { toolLineText, type ToolInfoLine } from './tools';
import type { ActiveCall, CallEvent, HandBackReason, Speaker, TranscriptRecord } from './types';

/** Transcript lines kept per call; older lines are dropped first. */
export const MAX_ENTRIES_PER_CALL = 2000;
/** Ended calls kept in the "Recently ended" list. */
export const MAX_ENDED_CALLS = 25;

export interface TranscriptLine {
  kind: 'line';
  id: number;
  speaker: Speaker;
  text: string;
  offsetMs: number;
  interrupted: boolean;
  atMs: number;
  /** A whisper the agent was asked to say at once. */
  sayNow?: boolean;
  /** A tool call seen live (`speaker: 'tool'`): its state and result. Stored tool lines have the text alone. */
  tool?: ToolInfoLine;
}

export interface CallNote {
  kind: 'note';
  id: number;
  tone: 'info' | 'warning' | 'error';
  text: string;
  atMs: number;
}

export type Entry = TranscriptLine | CallNote;

export interface CallView {
  callSid: string;
  streamSid: string | null;
  from: string | null;
  to: string | null;
  startedAtMs: number;
  /** `null` while the call is live. */
  endedAtMs: number | null;
  endReason: string | null;
  failed: boolean;
  entries: Entry[];
  bargeIns: number;
  issues: number;
  /** While the operator holds the call with their microphone: which one, and since when. */
  held: { device: string; sinceMs: number } | null;
}

export interface CallsState {
  calls: Readonly<Record<string, CallView>>;
  /** Call SIDs, newest first. */
  order: readonly string[];
  nextId: number;
}

export function emptyCalls(): CallsState {
  return { calls: {}, order: [], nextId: 1 };
}

export function isLive(call: CallView): boolean {
  return call.endedAtMs === null;
}

export function liveCalls(state: CallsState): CallView[] {
  return state.order.map((sid) => state.calls[sid]).filter((c): c is CallView => !!c && isLive(c));
}

export function endedCalls(state: CallsState): CallView[] {
  return state.order.map((sid) => state.calls[sid]).filter((c): c is CallView => !!c && !isLive(c));
}

function newCall(callSid: string, startedAtMs: number): CallView {
  return {
    callSid,
    streamSid: null,
    from: null,
    to: null,
    startedAtMs,
    endedAtMs: null,
    endReason: null,
    failed: false,
    entries: [],
    bargeIns: 0,
    issues: 0,
    held: null,
  };
}

function put(state: CallsState, call: CallView, nextId = state.nextId): CallsState {
  const known = call.callSid in state.calls;
  const order = known ? state.order : [call.callSid, ...state.order];
  return prune({ calls: { ...state.calls, [call.callSid]: call }, order, nextId });
}

/** Drops the oldest ended calls beyond [`MAX_ENDED_CALLS`]. Live calls are never dropped. */
function prune(state: CallsState): CallsState {
  let ended = 0;
  const drop: string[] = [];
  for (const sid of state.order) {
    const call = state.calls[sid];
    if (call && !isLive(call) && ++ended > MAX_ENDED_CALLS) {
      drop.push(sid);
    }
  }
  if (drop.length === 0) {
    return state;
  }
  const calls = Object.fromEntries(Object.entries(state.calls).filter(([sid]) => !drop.includes(sid)));
  return { ...state, calls, order: state.order.filter((sid) => !drop.includes(sid)) };
}

function withEntry(call: CallView, entry: Entry): Entry[] {
  const entries = [...call.entries, entry];
  return entries.length > MAX_ENTRIES_PER_CALL ? entries.slice(entries.length - MAX_ENTRIES_PER_CALL) : entries;
}

/** Adds a transcript line to `call`; a blank one adds nothing (but a call seen for the first time is kept). */
function withLine(
  state: CallsState,
  call: CallView,
  known: boolean,
  fields: Omit<TranscriptLine, 'kind' | 'id'>,
): CallsState {
  const text = fields.text.trim();
  if (text === '') {
    return known ? state : put(state, call);
  }
  const line: TranscriptLine = { ...fields, kind: 'line', id: state.nextId, text };
  return put(state, { ...call, entries: withEntry(call, line) }, state.nextId + 1);
}

/** Applies one event. Events for a call the UI has not seen yet (it opened mid-call) create it. */
export function applyEvent(state: CallsState, event: CallEvent): CallsState {
  const existing = state.calls[event.call_sid];
  const call = existing ?? newCall(event.call_sid, event.at_ms);
  const id = state.nextId;
  switch (event.type) {
    case 'call_started':
      return put(state, {
        ...call,
        streamSid: event.stream_sid,
        from: event.from,
        to: event.to,
        startedAtMs: existing ? Math.min(existing.startedAtMs, event.at_ms) : event.at_ms,
      });
    case 'transcript':
      return withLine(state, call, existing !== undefined, {
        speaker: event.speaker,
        text: event.text,
        offsetMs: event.offset_ms,
        interrupted: event.interrupted,
        atMs: event.at_ms,
      });
    case 'whisper':
      // A line like the stored `whisper` turn, so a backfill does not show it twice.
      return withLine(state, call, existing !== undefined, {
        speaker: 'whisper',
        text: event.text,
        offsetMs: event.offset_ms,
        interrupted: false,
        atMs: event.at_ms,
        sayNow: event.say_now,
      });
    case 'operator_took_over': {
      const note: CallNote = {
        kind: 'note',
        id,
        tone: 'info',
        text: `You took the call over (microphone: ${event.device})`,
        atMs: event.at_ms,
      };
      const held = { device: event.device, sinceMs: event.at_ms };
      return put(state, { ...call, held, entries: withEntry(call, note) }, id + 1);
    }
    case 'operator_handed_back': {
      const note: CallNote = {
        kind: 'note',
        id,
        tone: event.reason === 'microphone_lost' ? 'warning' : 'info',
        text: handBackText(event.reason, event.turns),
        atMs: event.at_ms,
      };
      return put(state, { ...call, held: null, entries: withEntry(call, note) }, id + 1);
    }
    case 'tool_started':
    case 'tool_approval_requested':
    case 'tool_approval_settled':
    case 'tool_finished':
      return withToolEvent(state, call, event);
    case 'barge_in': {
      const note: CallNote = {
        kind: 'note',
        id,
        tone: 'info',
        text: `Caller interrupted the agent (${(event.heard_ms / 1000).toFixed(1)} s heard)`,
        atMs: event.at_ms,
      };
      return put(state, { ...call, bargeIns: call.bargeIns + 1, entries: withEntry(call, note) }, id + 1);
    }
    case 'model_issue': {
      const note: CallNote = {
        kind: 'note',
        id,
        tone: 'warning',
        text: event.message ? `${event.message} (${event.code})` : event.code,
        atMs: event.at_ms,
      };
      return put(state, { ...call, issues: call.issues + 1, entries: withEntry(call, note) }, id + 1);
    }
    case 'call_ended': {
      if (existing && !isLive(existing)) {
        return state;
      }
      const note: CallNote = {
        kind: 'note',
        id,
        tone: event.failed ? 'error' : 'info',
        text: event.failed ? `Call failed: ${event.reason}` : `Call ended: ${event.reason}`,
        atMs: event.at_ms,
      };
      return put(
        state,
        {
          ...call,
          endedAtMs: Math.max(event.at_ms, call.startedAtMs),
          endReason: event.reason,
          failed: event.failed,
          held: null,
          entries: withEntry(call, note),
        },
        id + 1,
      );
    }
    case 'call_capped': {
      const refused = capRefuses(event.cap, call);
      const budget = event.cap === 'call_budget' || event.cap === 'daily_budget';
      const note: CallNote = {
        kind: 'note',
        id,
        tone: 'warning',
        text: refused
          ? `Call refused${budget ? " (today's budget is spent)" : ''}: ${event.message}`
          : budget
            ? `Budget reached: ${event.message}`
            : event.message,
        atMs: event.at_ms,
      };
      const capped: CallView = {
        ...call,
        from: call.from ?? event.from,
        to: call.to ?? event.to,
        issues: call.issues + 1,
        entries: withEntry(call, note),
      };
      // A refused call never streamed: it is over as soon as it is refused.
      if (refused && isLive(call)) {
        capped.endedAtMs = Math.max(event.at_ms, call.startedAtMs);
        capped.endReason = `refused: ${event.message}`;
      }
      return put(state, capped, id + 1);
    }
    case 'budget_warning': {
      const note: CallNote = {
        kind: 'note',
        id,
        tone: 'warning',
        text: `Near ${event.scope === 'call' ? "this call's" : "today's"} budget: ${formatUsd(event.spent_usd)} of ${formatUsd(event.cap_usd)} spent; the agent was asked to wrap up`,
        atMs: event.at_ms,
      };
      return put(state, { ...call, entries: withEntry(call, note) }, id + 1);
    }
    default:
      // An event type this UI does not know yet (or one `insight.ts` folds): keep the state as it is.
      return state;
  }
}

/**
 * Whether a cap turned the call away before it streamed (the concurrent-call and daily caps; today's budget when the
 * call never streamed) rather than ending it with a goodbye (its length, its own budget, today's budget mid-call).
 */
export function capRefuses(cap: string, call: Pick<CallView, 'streamSid'>): boolean {
  switch (cap) {
    case 'call_length':
    case 'call_budget':
      return false;
    case 'daily_budget':
      return call.streamSid === null;
    default:
      return true;
  }
}

type ToolEvent = Extract<CallEvent, { type: 'tool_started' | 'tool_approval_requested' | 'tool_approval_settled' | 'tool_finished' }>;

/**
 * A tool call's line in the transcript, at the moment the agent made it: "Running …" (or waiting for approval)
 * until `tool_finished` replaces it with the result. The finished line's text is the stored line's, so a
 * re-sync does not show it twice.
 */
function withToolEvent(state: CallsState, call: CallView, event: ToolEvent): CallsState {
  const at = call.entries.findIndex((e) => e.kind === 'line' && e.tool?.callId === event.call_id);
  const existing = at === -1 ? undefined : (call.entries[at] as TranscriptLine);
  let line: TranscriptLine;
  let nextId = state.nextId;
  const fresh = (offsetMs: number, info: ToolInfoLine): TranscriptLine => ({
    kind: 'line',
    id: nextId++,
    speaker: 'tool',
    text: `${info.name} ${info.arguments}`,
    offsetMs,
    interrupted: false,
    atMs: event.at_ms,
    tool: info,
  });
  const base = (name: string, args: string): ToolInfoLine => ({
    callId: event.call_id,
    name,
    arguments: args,
    state: 'running',
    result: null,
    latencyMs: null,
    approvedBy: null,
  });
  switch (event.type) {
    case 'tool_started': {
      if (existing?.tool) return state;
      line = fresh(event.offset_ms, { ...base(event.tool, event.arguments), state: event.needs_approval ? 'waiting' : 'running' });
      break;
    }
    case 'tool_approval_requested': {
      if (existing?.tool) {
        if (existing.tool.state !== 'running') return state;
        line = { ...existing, tool: { ...existing.tool, state: 'waiting' } };
      } else {
        // Its `tool_started` was missed (the window opened later): placed by its time.
        line = fresh(Math.max(0, event.at_ms - call.startedAtMs), { ...base(event.tool, event.arguments), state: 'waiting' });
      }
      break;
    }
    case 'tool_approval_settled': {
      if (!existing?.tool || existing.tool.state !== 'waiting') return state;
      // Declined: `tool_finished` follows at once with the outcome; approved: it runs now.
      if (!event.approved) return state;
      line = { ...existing, tool: { ...existing.tool, state: 'running', approvedBy: event.by } };
      break;
    }
    case 'tool_finished': {
      const info: ToolInfoLine = {
        ...base(event.tool, event.arguments),
        state: event.outcome,
        result: event.output ?? event.error,
        latencyMs: event.latency_ms,
        approvedBy: event.approved_by,
      };
      const text = toolLineText(event);
      line = existing ? { ...existing, text, offsetMs: event.offset_ms, tool: info } : { ...fresh(event.offset_ms, info), text };
      break;
    }
  }
  const entries = existing ? call.entries.map((e, i) => (i === at ? line : e)) : withEntry(call, line);
  return put(state, { ...call, entries }, nextId);
}

/** The transcript note for a hand-back: why the agent has the call again. */
export function handBackText(reason: HandBackReason, turns: number): string {
  const spoke = turns === 1 ? '1 turn' : `${turns} turns`;
  switch (reason) {
    case 'operator':
      return `You handed the call back to the agent (you spoke ${spoke})`;
    case 'microphone_lost':
      return `Your microphone stopped: the agent has the call again (you spoke ${spoke})`;
    case 'time_limit':
      return `The call reached its time limit while you held it (you spoke ${spoke})`;
    case 'call_ended':
      return `The call ended while you held it (you spoke ${spoke})`;
    default:
      return `The agent has the call again (you spoke ${spoke})`;
  }
}

/**
 * Reconciles with the core's list of live calls (fetched at start-up and after events were skipped).
 * Calls the list has that the state lacks are added; live calls the state has that the list lacks and
 * that started before the list was requested are marked ended, since their `call_ended` was missed.
 */
export function syncActive(
  state: CallsState,
  active: readonly ActiveCall[],
  requestedAtMs: number,
): CallsState {
  let next = state;
  for (const a of active) {
    const known = next.calls[a.call_sid];
    if (!known) {
      next = put(next, {
        ...newCall(a.call_sid, a.started_at_ms),
        streamSid: a.stream_sid,
        from: a.from,
        to: a.to,
      });
    }
  }
  const listed = new Set(active.map((a) => a.call_sid));
  for (const call of liveCalls(next)) {
    if (!listed.has(call.callSid) && call.startedAtMs < requestedAtMs) {
      next = put(next, {
        ...call,
        endedAtMs: Math.max(requestedAtMs, call.startedAtMs),
        endReason: 'no longer active',
        held: null,
      });
    }
  }
  // Newest first, as events would have ordered them.
  const order = [...next.order].sort(
    (a, b) => (next.calls[b]?.startedAtMs ?? 0) - (next.calls[a]?.startedAtMs ?? 0),
  );
  return { ...next, order };
}

/**
 * The calls whose transcripts a re-sync backfills: those live before it (their lines may have been skipped,
 * even if their end was too) and those live after it (including calls it just added), newest first.
 */
export function callsToBackfill(before: CallsState, after: CallsState): string[] {
  const sids = new Set([...liveCalls(before), ...liveCalls(after)].map((c) => c.callSid));
  return after.order.filter((sid) => sids.has(sid));
}

/** A stored transcript line as the `transcriptions` command returns it (the core also sends `at_ms`). */
export type StoredLine = TranscriptRecord & { at_ms?: number };

const lineKey = (speaker: Speaker, offsetMs: number, text: string): string => `${speaker}|${offsetMs}|${text}`;

/**
 * Backfills a call's transcript with the stored lines (fetched after events were skipped, or when the window
 * opened mid-call). Lines the call already shows (same speaker, offset and text) are kept as they are; the
 * others are inserted where their time puts them, before the first entry that came later, so the order of
 * what is shown never changes. A call the state does not have, or nothing new, returns `state` itself.
 */
export function mergeTranscripts(
  state: CallsState,
  callSid: string,
  stored: readonly StoredLine[],
): CallsState {
  const call = state.calls[callSid];
  if (!call) {
    return state;
  }
  const seen = new Set(
    call.entries.filter((e): e is TranscriptLine => e.kind === 'line').map((e) => lineKey(e.speaker, e.offsetMs, e.text)),
  );
  const entries = [...call.entries];
  let nextId = state.nextId;
  const missing = stored
    .map((r) => ({ r, text: r.text.trim(), atMs: r.at_ms ?? call.startedAtMs + r.offset_ms }))
    .filter(({ r, text }) => text !== '' && !seen.has(lineKey(r.speaker, r.offset_ms, text)))
    .sort((a, b) => a.atMs - b.atMs || a.r.offset_ms - b.r.offset_ms);
  for (const { r, text, atMs } of missing) {
    const key = lineKey(r.speaker, r.offset_ms, text);
    if (seen.has(key)) {
      continue;
    }
    seen.add(key);
    const line: TranscriptLine = {
      kind: 'line',
      id: nextId++,
      speaker: r.speaker,
      text,
      offsetMs: r.offset_ms,
      interrupted: r.interrupted ?? false,
      atMs,
    };
    const at = entries.findIndex((e) => e.atMs > atMs);
    entries.splice(at === -1 ? entries.length : at, 0, line);
  }
  if (nextId === state.nextId) {
    return state;
  }
  const kept = entries.length > MAX_ENTRIES_PER_CALL ? entries.slice(entries.length - MAX_ENTRIES_PER_CALL) : entries;
  return put(state, { ...call, entries: kept }, nextId);
}

/** Keeps the user's selection while its call exists; otherwise picks the newest live call, if any. */
export function pickSelection(state: CallsState, current: string | null): string | null {
  if (current !== null && current in state.calls) {
    return current;
  }
  return liveCalls(state)[0]?.callSid ?? null;
}

/** The latest transcript line of a call, for list previews. */
export function lastLine(call: CallView): TranscriptLine | undefined {
  for (let i = call.entries.length - 1; i >= 0; i--) {
    const entry = call.entries[i];
    if (entry?.kind === 'line') {
      return entry;
    }
  }
  return undefined;
}
