// The session form: defaults, validation and the parts of the UI that explain the GA API.

import type { SessionConfig, TurnDetection, Voice } from './types';

/** The ten GA voices (`verbio::realtime::session::Voice::ALL`), used when the core cannot be asked. */
export const VOICES: readonly Voice[] = [
  'alloy',
  'ash',
  'ballad',
  'coral',
  'echo',
  'sage',
  'shimmer',
  'verse',
  'marin',
  'cedar',
];

/** Built-in model list (`KNOWN_MODELS`), the fallback when the live list cannot be read. */
export const FALLBACK_MODELS: readonly string[] = [
  'gpt-realtime-2.1',
  'gpt-realtime-2.1-mini',
  'gpt-realtime-2',
  'gpt-realtime-1.5',
  'gpt-realtime',
  'gpt-realtime-mini',
];

export const TRANSCRIPTION_MODELS: readonly string[] = ['gpt-4o-mini-transcribe', 'gpt-4o-transcribe', 'whisper-1'];

/** `MAX_INSTRUCTIONS_CHARS` in the core. */
export const MAX_INSTRUCTIONS = 16_000;

/** Shown where the earlier design had a temperature slider. */
export const NO_TEMPERATURE_NOTE =
  'The GA Realtime API has no temperature setting. Use reasoning effort (how much the model thinks before it ' +
  'answers; 2.x models) to trade speed for care, speed for how fast the voice talks, and the instructions ' +
  'for tone and creativity.';

export function takesReasoning(model: string): boolean {
  return model.startsWith('gpt-realtime-2');
}

/** Characters as the core counts them (Unicode scalar values, not UTF-16 units). */
export function charCount(text: string): number {
  return [...text].length;
}

export function instructionsCounter(text: string): { text: string; over: boolean } {
  const n = charCount(text);
  return { text: `${n.toLocaleString('en-US')} / ${MAX_INSTRUCTIONS.toLocaleString('en-US')}`, over: n > MAX_INSTRUCTIONS };
}

export function defaultVad(type: TurnDetection['type']): TurnDetection {
  return type === 'server_vad'
    ? { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 }
    : { type: 'semantic_vad', eagerness: 'auto' };
}

/** Field → problem, mirroring `SessionConfig::validate` so the user sees errors before saving. */
export function validateSession(s: SessionConfig): Record<string, string> {
  const errors: Record<string, string> = {};
  if (s.model.trim() === '') errors.model = 'Choose a model.';
  if (!(s.speed >= 0.25 && s.speed <= 1.5)) errors.speed = 'Speed is 0.25–1.5.';
  if (s.max_output_tokens !== 'inf' && !(Number.isInteger(s.max_output_tokens) && s.max_output_tokens >= 1 && s.max_output_tokens <= 4096)) {
    errors.max_output_tokens = 'A whole number from 1 to 4096, or unlimited.';
  }
  if (charCount(s.instructions) > MAX_INSTRUCTIONS) {
    errors.instructions = `At most ${MAX_INSTRUCTIONS.toLocaleString('en-US')} characters.`;
  }
  if (s.turn_detection.type === 'server_vad') {
    const t = s.turn_detection;
    if (!(t.threshold >= 0 && t.threshold <= 1)) errors.threshold = 'Threshold is 0–1.';
    if (!(t.prefix_padding_ms >= 0 && t.prefix_padding_ms <= 5000)) errors.prefix_padding_ms = '0–5000 ms.';
    if (!(t.silence_duration_ms >= 0 && t.silence_duration_ms <= 10000)) errors.silence_duration_ms = '0–10000 ms.';
  }
  if (s.greeting.mode === 'speak_first' && s.greeting.opening_line.trim() === '') {
    errors.opening_line = 'Speak-first needs an opening line.';
  }
  return errors;
}

/** The list to offer: the live one if any, the fallback otherwise, always including the current model. */
export function modelOptions(live: readonly string[] | null, current: string): string[] {
  const list = live && live.length > 0 ? [...live] : [...FALLBACK_MODELS];
  if (current && !list.includes(current)) list.unshift(current);
  return list;
}
