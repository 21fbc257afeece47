// What the UI knows of the calls' Twilio status: the latest `call_status` per call and the
// answering-machine verdict (`machine_detection`). Pure, so it is unit-tested.

import type { CallEvent } from './types';

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
