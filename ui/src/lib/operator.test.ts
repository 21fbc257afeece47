import { describe, expect, it } from 'vitest';
import {
  isTakeOverShortcut,
  loadPushToTalk,
  operatorErrorText,
  PTT_KEY,
  pttMute,
  savePushToTalk,
  WHISPER_MAX_CHARS,
  whisperProblem,
} from './operator';
import { memoryStore } from './storage';

const key = (k: string, mods: Partial<Record<'ctrlKey' | 'shiftKey' | 'altKey' | 'metaKey', boolean>> = {}) => ({
  key: k,
  ctrlKey: false,
  shiftKey: false,
  altKey: false,
  metaKey: false,
  ...mods,
});

describe('whisper', () => {
  it('refuses an empty or an overlong whisper', () => {
    expect(whisperProblem('  ')).toMatch(/Type/);
    expect(whisperProblem('offer the discount')).toBeNull();
    expect(whisperProblem('x'.repeat(WHISPER_MAX_CHARS))).toBeNull();
    expect(whisperProblem('x'.repeat(WHISPER_MAX_CHARS + 1))).toMatch(/at most 2000/);
  });
});

describe('take-over shortcut', () => {
  it('is Ctrl+Shift+T (or Cmd+Shift+T), nothing else', () => {
    expect(isTakeOverShortcut(key('T', { ctrlKey: true, shiftKey: true }))).toBe(true);
    expect(isTakeOverShortcut(key('t', { metaKey: true, shiftKey: true }))).toBe(true);
    expect(isTakeOverShortcut(key('t', { ctrlKey: true }))).toBe(false);
    expect(isTakeOverShortcut(key('T', { ctrlKey: true, shiftKey: true, altKey: true }))).toBe(false);
    expect(isTakeOverShortcut(key('q', { ctrlKey: true, shiftKey: true }))).toBe(false);
  });
});

describe('push-to-talk', () => {
  const on = { on: true, code: 'Space' };
  const ev = (type: string, code = 'Space', extra: Partial<{ repeat: boolean; inText: boolean }> = {}) => ({
    type,
    code,
    repeat: false,
    inText: false,
    ...extra,
  });

  it('opens the microphone while the key is held and mutes it when released', () => {
    expect(pttMute(ev('keydown'), on)).toBe(false);
    expect(pttMute(ev('keyup'), on)).toBe(true);
  });

  it('ignores repeats, other keys, typing in a text field and push-to-talk being off', () => {
    expect(pttMute(ev('keydown', 'Space', { repeat: true }), on)).toBeNull();
    expect(pttMute(ev('keydown', 'KeyA'), on)).toBeNull();
    expect(pttMute(ev('keydown', 'Space', { inText: true }), on)).toBeNull();
    expect(pttMute(ev('keydown'), { on: false, code: 'Space' })).toBeNull();
    expect(pttMute(ev('keydown', 'F8'), { on: true, code: 'F8' })).toBe(false);
  });

  it('remembers the choice, falling back to off and Space', () => {
    const store = memoryStore();
    expect(loadPushToTalk(store)).toEqual({ on: false, code: 'Space' });
    savePushToTalk(store, { on: true, code: 'F9' });
    expect(loadPushToTalk(store)).toEqual({ on: true, code: 'F9' });
    store.setItem(PTT_KEY, '{"on":true,"code":"KeyZ"}');
    expect(loadPushToTalk(store)).toEqual({ on: true, code: 'Space' });
    store.setItem(PTT_KEY, 'not json');
    expect(loadPushToTalk(store)).toEqual({ on: false, code: 'Space' });
    expect(loadPushToTalk(null)).toEqual({ on: false, code: 'Space' });
  });
});

describe('operatorErrorText', () => {
  const fallback = (e: unknown) => `fallback: ${String(e)}`;
  const err = (code: string, message = 'm') => ({ code, message });

  it('says the agent keeps the call when there is no usable microphone', () => {
    expect(operatorErrorText(err('no_input_device'), fallback)).toBe('No microphone found — the agent keeps the call.');
    expect(operatorErrorText(err('input_device_unusable', 'device busy'), fallback)).toBe(
      'The microphone could not be opened — the agent keeps the call. (device busy)',
    );
  });

  it('explains one microphone, one call, and calls that are gone', () => {
    expect(operatorErrorText(err('operator_busy'), fallback)).toMatch(/hand it back first/);
    expect(operatorErrorText(err('already_ended'), fallback)).toBe('This call has ended.');
    expect(operatorErrorText(err('not_held'), fallback)).toMatch(/agent has it/);
  });

  it("keeps the core's message for anything else", () => {
    expect(operatorErrorText('command operator_take_over not found', fallback)).toBe('fallback: command operator_take_over not found');
  });
});
