import { describe, expect, it } from 'vitest';
import { charCount, instructionsCounter, modelOptions, takesReasoning, validateSession, VOICES, FALLBACK_MODELS } from './session';
import type { SessionConfig } from './types';

const base: SessionConfig = {
  model: 'gpt-realtime-2.1',
  voice: 'marin',
  instructions: 'Be brief.',
  max_output_tokens: 'inf',
  transcription: { model: 'gpt-4o-mini-transcribe' },
  turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
  noise_reduction: 'near_field',
  reasoning_effort: 'low',
  speed: 1,
  tools: [],
  greeting: { mode: 'wait_for_caller' },
};

describe('session form', () => {
  it('offers the ten GA voices', () => {
    expect(VOICES).toHaveLength(10);
    expect(new Set(VOICES).size).toBe(10);
  });

  it('counts characters the way the core does', () => {
    expect(charCount('héllo 👋')).toBe(7);
    expect(instructionsCounter('abc')).toEqual({ text: '3 / 16,000', over: false });
    expect(instructionsCounter('x'.repeat(16_001)).over).toBe(true);
  });

  it('validates like SessionConfig::validate', () => {
    expect(validateSession(base)).toEqual({});
    expect(validateSession({ ...base, speed: 2 })).toHaveProperty('speed');
    expect(validateSession({ ...base, max_output_tokens: 0 })).toHaveProperty('max_output_tokens');
    expect(validateSession({ ...base, max_output_tokens: 4096 })).toEqual({});
    expect(validateSession({ ...base, greeting: { mode: 'speak_first', opening_line: ' ' } })).toHaveProperty('opening_line');
    expect(
      validateSession({ ...base, turn_detection: { type: 'server_vad', threshold: 1.5, prefix_padding_ms: 0, silence_duration_ms: 0 } }),
    ).toHaveProperty('threshold');
  });

  it('falls back to the built-in models and keeps the current one', () => {
    expect(modelOptions(null, 'gpt-realtime-2.1')).toEqual([...FALLBACK_MODELS]);
    expect(modelOptions(['gpt-realtime-mini'], 'my-deployment')).toEqual(['my-deployment', 'gpt-realtime-mini']);
    expect(takesReasoning('gpt-realtime-2')).toBe(true);
    expect(takesReasoning('gpt-realtime-mini')).toBe(false);
  });
});
