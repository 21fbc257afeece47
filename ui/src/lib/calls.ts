// Folds the core's `call-event` stream into per-call view state. Pure and immutable: every change
// returns a new state object, so the UI can hold it in `$state.raw` and tests can compare values.

import type { ActiveCall, CallEvent, Speaker } from './types';

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
    case 'transcript': {
      const text = event.text.trim();
      if (text === '') {
        return existing ? state : put(state, call);
      }
      const line: TranscriptLine = {
        kind: 'line',
        id,
        speaker: event.speaker,
        text,
        offsetMs: event.offset_ms,
        interrupted: event.interrupted,
        atMs: event.at_ms,
      };
      return put(state, { ...call, entries: withEntry(call, line) }, id + 1);
    }
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
          entries: withEntry(call, note),
        },
        id + 1,
      );
    }
    default:
      // An event type this UI does not know yet: keep the state as it is.
      return state;
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
      });
    }
  }
  // Newest first, as events would have ordered them.
  const order = [...next.order].sort(
    (a, b) => (next.calls[b]?.startedAtMs ?? 0) - (next.calls[a]?.startedAtMs ?? 0),
  );
  return { ...next, order };
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
