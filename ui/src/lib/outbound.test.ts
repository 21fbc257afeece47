import { describe, expect, it } from 'vitest';
import { applyProgress, describeDetection, isMachine, MAX_TRACKED, type ProgressState } from './outbound';
import type { CallEvent } from './types';

function status(sid: string, s: string, at: number, extra: Partial<CallEvent> = {}): CallEvent {
  return {
    type: 'call_status',
    call_sid: sid,
    status: s,
    direction: 'outbound-api',
    from: '+15550000000',
    to: '+15551112222',
    answered_by: null,
    duration_secs: null,
    at_ms: at,
    ...extra,
  } as CallEvent;
}

describe('call progress', () => {
  it('follows the status and keeps the duration', () => {
    let s: ProgressState = {};
    s = applyProgress(s, status('CA1', 'ringing', 1));
    expect(s['CA1']?.status).toBe('ringing');
    s = applyProgress(s, status('CA1', 'in-progress', 2));
    s = applyProgress(s, status('CA1', 'completed', 3, { duration_secs: 42 }));
    expect(s['CA1']).toMatchObject({ status: 'completed', duration_secs: 42 });
    // A late, out-of-order callback does not undo the end.
    const late = applyProgress(s, status('CA1', 'ringing', 4));
    expect(late).toBe(s);
  });

  it('records the machine verdict and ignores other events', () => {
    let s: ProgressState = {};
    s = applyProgress(s, status('CA2', 'in-progress', 1));
    s = applyProgress(s, { type: 'machine_detection', call_sid: 'CA2', answered_by: 'machine_end_beep', action: 'voicemail', at_ms: 2 });
    expect(s['CA2']?.detection).toEqual({ answered_by: 'machine_end_beep', action: 'voicemail' });
    expect(s['CA2']?.status).toBe('in-progress');
    const same = applyProgress(s, { type: 'barge_in', call_sid: 'CA2', item_id: 'i', heard_ms: 1, at_ms: 3 });
    expect(same).toBe(s);
  });

  it('forgets the oldest calls beyond the cap', () => {
    let s: ProgressState = {};
    for (let i = 0; i <= MAX_TRACKED; i++) s = applyProgress(s, status(`CA${i}`, 'ringing', i));
    expect(Object.keys(s)).toHaveLength(MAX_TRACKED);
    expect(s['CA0']).toBeUndefined();
  });

  it('words the verdict', () => {
    expect(isMachine('machine_start')).toBe(true);
    expect(isMachine('fax')).toBe(true);
    expect(isMachine('human')).toBe(false);
    expect(isMachine(null)).toBe(false);
    expect(describeDetection({ answered_by: 'machine_end_beep', action: 'voicemail' })).toBe(
      'Answering machine answered (machine_end_beep): leaving the voicemail',
    );
    expect(describeDetection({ answered_by: 'human', action: 'continue' })).toContain('A person');
    expect(describeDetection({ answered_by: 'machine_start', action: 'wait' })).toContain('waiting for the beep');
  });
});
