import { describe, expect, it } from 'vitest';
import {
  MAX_ENDED_CALLS,
  MAX_ENTRIES_PER_CALL,
  applyEvent,
  callsToBackfill,
  emptyCalls,
  endedCalls,
  isLive,
  lastLine,
  liveCalls,
  mergeTranscripts,
  pickSelection,
  syncActive,
  handBackText,
  type CallsState,
  type StoredLine,
} from './calls';
import type { CallEvent } from './types';

const started = (sid: string, at: number, from = '+14155550100'): CallEvent => ({
  type: 'call_started',
  call_sid: sid,
  stream_sid: `MZ${sid}`,
  from,
  to: '+14155550199',
  at_ms: at,
});

const said = (sid: string, speaker: 'caller' | 'agent', text: string, at: number, interrupted = false): CallEvent => ({
  type: 'transcript',
  call_sid: sid,
  speaker,
  text,
  offset_ms: at - 1000,
  interrupted,
  at_ms: at,
});

const ended = (sid: string, at: number, failed = false, reason = 'caller hung up'): CallEvent => ({
  type: 'call_ended',
  call_sid: sid,
  reason,
  failed,
  at_ms: at,
});

/** The value, failing the test when it is missing. */
function must<T>(value: T | null | undefined): T {
  expect(value).toBeDefined();
  expect(value).not.toBeNull();
  return value as T;
}

const fold = (events: CallEvent[], from: CallsState = emptyCalls()): CallsState => events.reduce(applyEvent, from);

describe('applyEvent', () => {
  it('builds a live call with its transcript in order', () => {
    const s = fold([
      started('CA1', 1000),
      said('CA1', 'agent', 'Hello, how can I help?', 2000),
      said('CA1', 'caller', '  I need a refund. ', 3000),
    ]);
    const [call] = liveCalls(s);
    expect(call?.callSid).toBe('CA1');
    expect(call?.from).toBe('+14155550100');
    expect(call?.streamSid).toBe('MZCA1');
    expect(call?.entries.map((e) => e.kind === 'line' && [e.speaker, e.text])).toEqual([
      ['agent', 'Hello, how can I help?'],
      ['caller', 'I need a refund.'],
    ]);
    expect(lastLine(must(call))?.text).toBe('I need a refund.');
    expect(new Set(must(call).entries.map((e) => e.id)).size).toBe(2);
  });

  it('does not mutate the state it is given', () => {
    const before = fold([started('CA1', 1000)]);
    const snapshot = JSON.stringify(before);
    const after = applyEvent(before, said('CA1', 'agent', 'Hi', 1500));
    expect(JSON.stringify(before)).toBe(snapshot);
    expect(after).not.toBe(before);
    expect(after.calls['CA1']).not.toBe(before.calls['CA1']);
  });

  it('lists the newest call first and moves ended calls out of the live list', () => {
    const s = fold([started('CA1', 1000), started('CA2', 2000), ended('CA1', 5000)]);
    expect(liveCalls(s).map((c) => c.callSid)).toEqual(['CA2']);
    const [done] = endedCalls(s);
    expect(done?.callSid).toBe('CA1');
    expect(done?.endedAtMs).toBe(5000);
    expect(done?.endReason).toBe('caller hung up');
    expect(done?.entries.at(-1)).toMatchObject({ kind: 'note', tone: 'info', text: 'Call ended: caller hung up' });
  });

  it('marks failed calls and notes model issues and barge-ins', () => {
    const s = fold([
      started('CA1', 1000),
      { type: 'barge_in', call_sid: 'CA1', item_id: 'item_1', heard_ms: 1250, at_ms: 2000 },
      { type: 'model_issue', call_sid: 'CA1', code: 'reconnect', message: 'Model socket dropped', at_ms: 3000 },
      ended('CA1', 4000, true, 'model unavailable'),
    ]);
    const call = must(s.calls['CA1']);
    expect(call.failed).toBe(true);
    expect(call.bargeIns).toBe(1);
    expect(call.issues).toBe(1);
    expect(call.entries.map((e) => e.kind === 'note' && e.tone)).toEqual(['info', 'warning', 'error']);
    expect(call.entries[0]).toMatchObject({ text: 'Caller interrupted the agent (1.3 s heard)' });
    expect(call.entries[1]).toMatchObject({ text: 'Model socket dropped (reconnect)' });
  });

  it('shows a call a cap refused as ended, and a call cut at its maximum length with a note', () => {
    const s = fold([
      {
        type: 'call_capped',
        call_sid: 'CA5',
        cap: 'concurrent_calls',
        message: 'Sorry, all our lines are busy right now.',
        from: '+14155550100',
        to: '+14155550199',
        at_ms: 2000,
      },
      started('CA6', 1000),
      {
        type: 'call_capped',
        call_sid: 'CA6',
        cap: 'call_length',
        message: 'The call reached its maximum length (30 min); the agent says goodbye.',
        from: null,
        to: null,
        at_ms: 1_801_000,
      },
    ]);
    const refused = must(s.calls['CA5']);
    expect(isLive(refused)).toBe(false);
    expect(refused.from).toBe('+14155550100');
    expect(refused.endReason).toBe('refused: Sorry, all our lines are busy right now.');
    expect(refused.entries[0]).toMatchObject({ kind: 'note', tone: 'warning', text: 'Call refused: Sorry, all our lines are busy right now.' });
    const long = must(s.calls['CA6']);
    expect(isLive(long)).toBe(true);
    expect(long.issues).toBe(1);
    expect(long.entries.at(-1)).toMatchObject({ tone: 'warning', text: expect.stringContaining('maximum length') });
    expect(endedCalls(s).map((c) => c.callSid)).toEqual(['CA5']);
  });

  it('tells a budget that ends a call from one that refuses it, and notes a budget warning', () => {
    const capped = (sid: string, cap: 'call_budget' | 'daily_budget', at: number): CallEvent => ({
      type: 'call_capped',
      call_sid: sid,
      cap,
      message: 'Thanks for calling, goodbye.',
      from: '+14155550100',
      to: null,
      at_ms: at,
    });
    const s = fold([
      started('CA1', 1000),
      { type: 'budget_warning', call_sid: 'CA1', scope: 'call', spent_usd: 0.4, cap_usd: 0.5, at_ms: 2000 },
      capped('CA1', 'call_budget', 3000),
      started('CA2', 1000),
      capped('CA2', 'daily_budget', 4000),
      capped('CA3', 'daily_budget', 5000),
    ]);
    const ended = must(s.calls['CA1']);
    expect(isLive(ended)).toBe(true); // the agent says goodbye; call_ended follows
    expect(ended.entries.map((e) => e.kind === 'note' && e.text)).toEqual([
      "Near this call's budget: $0.40 of $0.50 spent; the agent was asked to wrap up",
      'Budget reached: Thanks for calling, goodbye.',
    ]);
    expect(isLive(must(s.calls['CA2']))).toBe(true);
    const refused = must(s.calls['CA3']);
    expect(isLive(refused)).toBe(false);
    expect(refused.entries[0]).toMatchObject({ text: "Call refused (today's budget is spent): Thanks for calling, goodbye." });
  });

  it('creates a call it has not seen start (the UI opened mid-call)', () => {
    const s = fold([said('CA9', 'caller', 'Are you there?', 7000)]);
    const call = s.calls['CA9'];
    expect(call?.startedAtMs).toBe(7000);
    expect(call?.from).toBeNull();
    // A late call_started fills in the parties and keeps the earliest start.
    const t = applyEvent(s, started('CA9', 6000));
    expect(t.calls['CA9']?.from).toBe('+14155550100');
    expect(t.calls['CA9']?.startedAtMs).toBe(6000);
    expect(t.calls['CA9']?.entries).toHaveLength(1);
  });

  it('ignores a second call_ended, blank transcripts and unknown event types', () => {
    const s = fold([started('CA1', 1000), ended('CA1', 2000)]);
    expect(applyEvent(s, ended('CA1', 3000, true))).toBe(s);
    const live = fold([started('CA2', 1000)]);
    expect(applyEvent(live, said('CA2', 'agent', '   ', 1500))).toBe(live);
    const unknown = { type: 'dtmf', call_sid: 'CA2', digit: '5', at_ms: 1600 } as unknown as CallEvent;
    expect(applyEvent(live, unknown)).toBe(live);
  });

  it('keeps interrupted agent lines marked', () => {
    const s = fold([started('CA1', 1000), said('CA1', 'agent', 'Our opening hours are', 2000, true)]);
    expect(s.calls['CA1']?.entries[0]).toMatchObject({ kind: 'line', interrupted: true });
  });

  it('bounds the transcript and the number of ended calls', () => {
    let s = fold([started('CA1', 0)]);
    for (let i = 0; i < MAX_ENTRIES_PER_CALL + 10; i++) {
      s = applyEvent(s, said('CA1', 'caller', `line ${i}`, i + 1));
    }
    const entries = must(s.calls['CA1']).entries;
    expect(entries).toHaveLength(MAX_ENTRIES_PER_CALL);
    expect(entries[0]).toMatchObject({ text: 'line 10' });

    let t = emptyCalls();
    for (let i = 0; i < MAX_ENDED_CALLS + 5; i++) {
      t = fold([started(`CA${i}`, i * 10), ended(`CA${i}`, i * 10 + 5)], t);
    }
    t = applyEvent(t, started('LIVE', 100_000));
    expect(endedCalls(t)).toHaveLength(MAX_ENDED_CALLS);
    expect(endedCalls(t)[0]?.callSid).toBe(`CA${MAX_ENDED_CALLS + 4}`);
    expect(Object.keys(t.calls)).toHaveLength(t.order.length);
    expect(liveCalls(t).map((c) => c.callSid)).toEqual(['LIVE']);
  });
});

describe('syncActive', () => {
  it('adds calls the core lists and ends live calls whose end was missed', () => {
    const s = fold([started('OLD', 1000), started('NEW', 9000)]);
    const t = syncActive(
      s,
      [{ call_sid: 'OTHER', stream_sid: 'MZ', from: '+1', to: null, started_at_ms: 5000 }],
      8000,
    );
    expect(liveCalls(t).map((c) => c.callSid)).toEqual(['NEW', 'OTHER']);
    expect(t.calls['OLD']).toMatchObject({ endReason: 'no longer active', endedAtMs: 8000 });
  });

  it('leaves known calls as they are', () => {
    const s = fold([started('CA1', 1000), said('CA1', 'agent', 'Hi', 1200)]);
    const t = syncActive(s, [{ call_sid: 'CA1', stream_sid: 'x', from: null, to: null, started_at_ms: 1 }], 2000);
    expect(t.calls['CA1']).toBe(s.calls['CA1']);
  });
});

const stored = (speaker: 'caller' | 'agent', text: string, at: number, interrupted = false): StoredLine => ({
  speaker,
  text,
  offset_ms: at - 1000,
  interrupted,
  at_ms: at,
});

const texts = (s: CallsState, sid: string): string[] =>
  must(s.calls[sid]).entries.map((e) => (e.kind === 'line' ? e.text : `note: ${e.text}`));

describe('mergeTranscripts', () => {
  it('fills in the lines missed during a gap, in time order, without duplicating the others', () => {
    const s = fold([
      started('CA1', 1000),
      said('CA1', 'agent', 'Hello, how can I help?', 2000),
      { type: 'barge_in', call_sid: 'CA1', item_id: 'i', heard_ms: 500, at_ms: 2500 },
      // Lines at 3000 and 4000 were skipped.
      said('CA1', 'agent', 'Anything else?', 5000),
    ]);
    const t = mergeTranscripts(s, 'CA1', [
      stored('agent', 'Hello, how can I help?', 2000),
      stored('caller', ' I need a refund. ', 3000),
      stored('agent', 'Sure, one moment.', 4000, true),
      stored('agent', 'Anything else?', 5000),
    ]);
    expect(texts(t, 'CA1')).toEqual([
      'Hello, how can I help?',
      'note: Caller interrupted the agent (0.5 s heard)',
      'I need a refund.',
      'Sure, one moment.',
      'Anything else?',
    ]);
    const entries = must(t.calls['CA1']).entries;
    expect(entries[3]).toMatchObject({ kind: 'line', speaker: 'agent', interrupted: true, offsetMs: 3000, atMs: 4000 });
    expect(new Set(entries.map((e) => e.id)).size).toBe(entries.length);
    expect(t.nextId).toBe(s.nextId + 2);
    // The state it was given is untouched, and merging again changes nothing.
    expect(texts(s, 'CA1')).toHaveLength(3);
    expect(mergeTranscripts(t, 'CA1', [stored('caller', 'I need a refund.', 3000)])).toBe(t);
  });

  it('returns the state itself for an unknown call, nothing new or blank lines', () => {
    const s = fold([started('CA1', 1000), said('CA1', 'caller', 'Hi', 1500)]);
    expect(mergeTranscripts(s, 'GONE', [stored('caller', 'x', 2000)])).toBe(s);
    expect(mergeTranscripts(s, 'CA1', [])).toBe(s);
    expect(mergeTranscripts(s, 'CA1', [stored('caller', 'Hi', 1500), stored('agent', '  ', 1600)])).toBe(s);
  });

  it('places lines without a time by their offset from the start and keeps the transcript bounded', () => {
    const s = fold([started('CA1', 1000), said('CA1', 'caller', 'last', 9000)]);
    const t = mergeTranscripts(s, 'CA1', [{ speaker: 'agent', text: 'first', offset_ms: 500 }]);
    expect(texts(t, 'CA1')).toEqual(['first', 'last']);
    expect(t.calls['CA1']?.entries[0]).toMatchObject({ atMs: 1500, interrupted: false });

    const many = Array.from({ length: MAX_ENTRIES_PER_CALL + 5 }, (_, i) => stored('caller', `line ${i}`, 2000 + i));
    const u = mergeTranscripts(s, 'CA1', many);
    const entries = must(u.calls['CA1']).entries;
    expect(entries).toHaveLength(MAX_ENTRIES_PER_CALL);
    expect(entries.at(-1)).toMatchObject({ text: 'last' });
    expect(entries[0]).toMatchObject({ text: 'line 6' });
  });
});

describe('callsToBackfill', () => {
  it('takes the calls live before or after the re-sync, newest first', () => {
    const before = fold([started('ENDED', 500), ended('ENDED', 600), started('OLD', 1000), started('KEPT', 2000)]);
    const after = syncActive(
      before,
      [
        { call_sid: 'KEPT', stream_sid: 'MZ', from: null, to: null, started_at_ms: 2000 },
        { call_sid: 'MISSED', stream_sid: 'MZ', from: null, to: null, started_at_ms: 3000 },
      ],
      4000,
    );
    expect(callsToBackfill(before, after)).toEqual(['MISSED', 'KEPT', 'OLD']);
  });
});

describe('pickSelection', () => {
  it('keeps an existing selection and otherwise picks the newest live call', () => {
    const s = fold([started('CA1', 1000), started('CA2', 2000), ended('CA2', 3000)]);
    expect(pickSelection(s, 'CA2')).toBe('CA2');
    expect(pickSelection(s, 'GONE')).toBe('CA1');
    expect(pickSelection(s, null)).toBe('CA1');
    expect(pickSelection(emptyCalls(), null)).toBeNull();
  });
});

describe('the operator in the loop', () => {
  const whisper = (sid: string, text: string, at: number, sayNow = false): CallEvent => ({
    type: 'whisper',
    call_sid: sid,
    text,
    say_now: sayNow,
    offset_ms: at - 1000,
    at_ms: at,
  });

  it('shows a whisper as a private line, flagged when the agent was asked to say it now', () => {
    const s = fold([started('CA1', 1000), whisper('CA1', ' offer the 10 % discount ', 3000), whisper('CA1', 'Thanks for waiting', 4000, true)]);
    const lines = must(s.calls.CA1).entries.filter((e) => e.kind === 'line');
    expect(lines.map((l) => [l.speaker, l.text, l.sayNow])).toEqual([
      ['whisper', 'offer the 10 % discount', false],
      ['whisper', 'Thanks for waiting', true],
    ]);
    expect(fold([whisper('CA1', '  ', 3000)], s)).toBe(s);
  });

  it('marks the call held from take-over to hand-back, with a note for each', () => {
    const held = fold([
      started('CA1', 1000),
      { type: 'operator_took_over', call_sid: 'CA1', device: 'USB Headset', offset_ms: 4000, at_ms: 5000 },
      said('CA1', 'caller', 'Is this a person?', 6000),
    ]);
    expect(must(held.calls.CA1).held).toEqual({ device: 'USB Headset', sinceMs: 5000 });
    const operatorSaid = fold(
      [{ type: 'transcript', call_sid: 'CA1', speaker: 'operator', text: '(the operator spoke for 4 s)', offset_ms: 6000, interrupted: false, at_ms: 7000 }],
      held,
    );
    const back = fold(
      [{ type: 'operator_handed_back', call_sid: 'CA1', offset_ms: 8000, turns: 1, reason: 'operator', at_ms: 9000 }],
      operatorSaid,
    );
    const call = must(back.calls.CA1);
    expect(call.held).toBeNull();
    expect(call.entries.map((e) => (e.kind === 'line' ? `${e.speaker}: ${e.text}` : `note: ${e.text}`))).toEqual([
      'note: You took the call over (microphone: USB Headset)',
      'caller: Is this a person?',
      'operator: (the operator spoke for 4 s)',
      'note: You handed the call back to the agent (you spoke 1 turn)',
    ]);
  });

  it('says why the agent has the call again', () => {
    expect(handBackText('microphone_lost', 2)).toBe('Your microphone stopped: the agent has the call again (you spoke 2 turns)');
    expect(handBackText('time_limit', 0)).toMatch(/time limit/);
    expect(handBackText('call_ended', 3)).toMatch(/ended while you held it/);
    const s = fold([
      started('CA1', 1000),
      { type: 'operator_took_over', call_sid: 'CA1', device: 'default', offset_ms: 1000, at_ms: 2000 },
      { type: 'operator_handed_back', call_sid: 'CA1', offset_ms: 2000, turns: 0, reason: 'microphone_lost', at_ms: 3000 },
    ]);
    const last = must(s.calls.CA1).entries.at(-1);
    expect(last?.kind === 'note' && last.tone).toBe('warning');
  });

  it('ends a hold with the call', () => {
    const s = fold([
      started('CA1', 1000),
      { type: 'operator_took_over', call_sid: 'CA1', device: 'default', offset_ms: 1000, at_ms: 2000 },
      ended('CA1', 3000),
    ]);
    expect(must(s.calls.CA1).held).toBeNull();
  });

  it('does not show a whisper twice when the stored transcript is merged in', () => {
    const s = fold([started('CA1', 1000), whisper('CA1', 'ask for the order number', 3000)]);
    const merged = mergeTranscripts(s, 'CA1', [
      { speaker: 'whisper', text: 'ask for the order number', offset_ms: 2000 },
      { speaker: 'operator', text: 'Let me look that up.', offset_ms: 2500 },
    ]);
    const lines = must(merged.calls.CA1).entries.filter((e) => e.kind === 'line');
    expect(lines.map((l) => l.speaker)).toEqual(['whisper', 'operator']);
  });
});
