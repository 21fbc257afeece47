import { describe, expect, it } from 'vitest';
import { e164Problem, formatAsYouType, isValidE164, normalizeE164 } from './phone';

describe('phone numbers', () => {
  it('normalizes what is typed to E.164', () => {
    expect(normalizeE164('+1 (415) 555-0100')).toBe('+14155550100');
    expect(normalizeE164('44 20 7946 0958')).toBe('+442079460958');
    expect(normalizeE164('+')).toBe('+');
    expect(normalizeE164('')).toBe('');
    expect(normalizeE164('+1234567890123456789')).toBe('+123456789012345');
  });

  it('formats as you type', () => {
    expect(formatAsYouType('+1415')).toBe('+1 (415)');
    expect(formatAsYouType('+141555')).toBe('+1 (415) 55');
    expect(formatAsYouType('+14155550100')).toBe('+1 (415) 555-0100');
    expect(formatAsYouType('+442079460958')).toBe('+44 2079 4609 58');
    expect(formatAsYouType('+79161234567')).toBe('+7 9161 2345 67');
  });

  it('validates', () => {
    expect(isValidE164('+14155550100')).toBe(true);
    expect(isValidE164('+0123456789')).toBe(false);
    expect(isValidE164('+1234')).toBe(false);
    expect(e164Problem('+14155550100')).toBeNull();
    expect(e164Problem('')).toMatch(/country code/);
    expect(e164Problem('+0 123 456 789')).toMatch(/never starts with 0/);
    expect(e164Problem('+1415')).toMatch(/Too short/);
  });
});
