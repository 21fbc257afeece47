import { describe, expect, it } from 'vitest';
import {
  applyProgress,
  buildPlaceCallRequest,
  defaultOutboundForm,
  describeDetection,
  isMachine,
  MAX_TRACKED,
  overridesSummary,
  resetOverrides,
  type OutboundForm,
  type ProgressState,
} from './outbound';
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

const form = (over: Partial<OutboundForm> = {}): OutboundForm => ({
  ...defaultOutboundForm(),
  to: '+1 (415) 555-0100',
  from: '+15005550006',
  ...over,
});

describe('the place_call request', () => {
  it('leaves every unset override out, so the session applies', () => {
    const built = buildPlaceCallRequest(form());
    expect(built).toEqual({
      ok: true,
      errors: {},
      request: {
        to: '+14155550100',
        from: '+15005550006',
        record: true,
        twilio_recording: false,
        detect_machines: true,
        machine_policy: 'hang_up',
      },
    });
    expect(overridesSummary(form())).toBeNull();
  });

  it('sends each override that is set', () => {
    const built = buildPlaceCallRequest(
      form({
        model: ' gpt-realtime-2.1-mini ',
        voice: 'cedar',
        reasoning_effort: 'high',
        speed: '1.25',
        max_tokens_mode: 'limit',
        max_tokens: '4096',
        greeting: 'speak_first',
        opening_line: ' Hi, this is Verbio. ',
        instructions: ' Confirm the appointment. ',
        record: false,
        twilio_recording: true,
        machine_policy: 'voicemail',
        voicemail_message: ' Please call back. ',
      }),
    );
    expect(built.ok).toBe(true);
    expect(built.request).toEqual({
      to: '+14155550100',
      from: '+15005550006',
      model: 'gpt-realtime-2.1-mini',
      voice: 'cedar',
      reasoning_effort: 'high',
      speed: 1.25,
      max_output_tokens: 4096,
      greeting: 'speak_first',
      opening_line: 'Hi, this is Verbio.',
      instructions: 'Confirm the appointment.',
      record: false,
      twilio_recording: true,
      detect_machines: true,
      machine_policy: 'voicemail',
      voicemail_message: 'Please call back.',
    });
    expect(buildPlaceCallRequest(form({ max_tokens_mode: 'inf' })).request?.max_output_tokens).toBe('inf');
  });

  it('drops what does not apply', () => {
    // No opening line without speak-first; no voicemail text unless leaving one; no policy without detection.
    const wait = buildPlaceCallRequest(form({ greeting: 'wait_for_caller', opening_line: 'Hi', voicemail_message: 'x' })).request;
    expect(wait).toMatchObject({ greeting: 'wait_for_caller' });
    expect(wait).not.toHaveProperty('opening_line');
    expect(wait).not.toHaveProperty('voicemail_message');
    const off = buildPlaceCallRequest(form({ detect_machines: false, machine_policy: 'voicemail', voicemail_message: 'x' })).request;
    expect(off).toMatchObject({ detect_machines: false });
    expect(off).not.toHaveProperty('machine_policy');
    expect(off).not.toHaveProperty('voicemail_message');
    // Speak first with an empty line: the core uses the session's opening line.
    expect(buildPlaceCallRequest(form({ greeting: 'speak_first', opening_line: ' ' })).request).not.toHaveProperty('opening_line');
  });

  it('checks ranges as SessionConfig::validate does', () => {
    for (const speed of ['0.2', '1.6', 'fast']) {
      expect(buildPlaceCallRequest(form({ speed })).errors).toHaveProperty('speed');
    }
    expect(buildPlaceCallRequest(form({ speed: '0.25' })).request?.speed).toBe(0.25);
    expect(buildPlaceCallRequest(form({ speed: '1.5' })).request?.speed).toBe(1.5);
    for (const max_tokens of ['0', '4097', '12.5', '']) {
      expect(buildPlaceCallRequest(form({ max_tokens_mode: 'limit', max_tokens })).errors).toHaveProperty('max_output_tokens');
    }
    expect(buildPlaceCallRequest(form({ max_tokens_mode: 'limit', max_tokens: '1' })).request?.max_output_tokens).toBe(1);
    // An unused limit is not checked.
    expect(buildPlaceCallRequest(form({ max_tokens_mode: 'session', max_tokens: '0' })).ok).toBe(true);
    expect(buildPlaceCallRequest(form({ instructions: 'x'.repeat(16_001) })).errors).toHaveProperty('instructions');
  });

  it('needs a valid number and a caller ID', () => {
    const bad = buildPlaceCallRequest(form({ to: '0415', from: '' }));
    expect(bad.ok).toBe(false);
    expect(bad.request).toBeNull();
    expect(bad.errors.to).toContain('never starts with 0');
    expect(bad.errors).toHaveProperty('from');
  });

  it('sums up and resets the overrides', () => {
    const f = form({ voice: 'cedar', speed: '1.2', twilio_recording: true, machine_policy: 'continue' });
    expect(overridesSummary(f)).toBe('voice cedar, speed 1.2, Twilio recording, talks to machines');
    expect(overridesSummary(form({ detect_machines: false, record: false }))).toBe('not recorded, no machine detection');
    const reset = resetOverrides(f);
    expect(reset).toEqual({ ...defaultOutboundForm(), to: f.to, from: f.from });
    expect(overridesSummary(reset)).toBeNull();
  });
});
