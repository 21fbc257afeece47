import { describe, expect, it } from 'vitest';
import { errorBody, errorCode, errorMessage, formatClock, formatDuration, formatParty, speakerLabel } from './format';

describe('formatDuration', () => {
  it.each([
    [0, '0:00'],
    [999, '0:00'],
    [5_000, '0:05'],
    [65_000, '1:05'],
    [600_000, '10:00'],
    [3_723_000, '1:02:03'],
    [-5, '0:00'],
    [Number.NaN, '0:00'],
  ])('%d ms reads %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('formatParty', () => {
  it('formats North American numbers and keeps others', () => {
    expect(formatParty('+14155550100')).toBe('+1 (415) 555-0100');
    expect(formatParty('+442071838750')).toBe('+442071838750');
    expect(formatParty('client:alice')).toBe('alice');
    expect(formatParty('sip:bob@example.com')).toBe('sip:bob@example.com');
  });

  it('reads missing and withheld numbers as Unknown', () => {
    for (const v of [null, undefined, '', '  ', 'anonymous', 'Restricted', 'client:']) {
      expect(formatParty(v)).toBe('Unknown');
    }
  });
});

describe('formatClock', () => {
  it('shows hours, minutes and seconds', () => {
    const at = new Date(2026, 0, 2, 14, 5, 9).getTime();
    expect(formatClock(at, 'en-GB')).toBe('14:05:09');
  });
});

describe('errorMessage', () => {
  it('reads command errors, exceptions and anything else', () => {
    expect(errorMessage('no active call CA1')).toBe('no active call CA1');
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage({ code: 1 })).toBe('{"code":1}');
  });

  it('reads {code, message} from a command and {error: {code, message}} from /api', () => {
    const command = { code: 'not_found', message: 'no call CA1' };
    const http = { error: { code: 'not_found', message: 'no call CA1' } };
    expect(errorMessage(command)).toBe('no call CA1');
    expect(errorMessage(http)).toBe('no call CA1');
    expect(errorBody(command)).toEqual(command);
    expect(errorBody(http)).toEqual(command);
    expect(errorCode(command)).toBe('not_found');
    expect(errorCode(http)).toBe('not_found');
  });

  it('finds no code where there is none', () => {
    for (const value of ['command hang_up not found', new Error('boom'), null, undefined, 42, { code: 'x' }, { error: 'x' }]) {
      expect(errorCode(value)).toBeNull();
    }
    expect(errorMessage({ error: { code: 3, message: 'm' } })).toBe('{"error":{"code":3,"message":"m"}}');
  });
});

describe('speakerLabel', () => {
  it('labels the operator and whispers', () => {
    expect(speakerLabel('caller')).toBe('Caller');
    expect(speakerLabel('agent')).toBe('Agent');
    expect(speakerLabel('operator')).toBe('You');
    expect(speakerLabel('operator', 'library')).toBe('Operator');
    expect(speakerLabel('whisper')).toBe('Whisper (only you see this)');
    expect(speakerLabel('whisper', 'library')).toMatch(/private/);
  });
});
