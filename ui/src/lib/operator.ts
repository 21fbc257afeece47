// The operator in the loop, as the Calls panel handles it: whisper limits, the take-over shortcut, push-to-talk
// keys and what each failure tells the person at the desk. Pure, so it is unit-tested; the components only
// wire it to `api`.

import { errorBody } from './format';
import type { KeyValueStore } from './storage';

/** The longest whisper the core accepts (`invalid_request` beyond). */
export const WHISPER_MAX_CHARS = 2000;

/** Why `text` cannot be sent as a whisper, or `null`. */
export function whisperProblem(text: string): string | null {
  const length = text.trim().length;
  if (length === 0) return 'Type what the agent should know first.';
  if (length > WHISPER_MAX_CHARS) return `A whisper is at most ${WHISPER_MAX_CHARS} characters (this one has ${length}).`;
  return null;
}

/** The keyboard shortcut that takes the selected call over, or hands it back. */
export const TAKE_OVER_SHORTCUT = { label: 'Ctrl+Shift+T', aria: 'Control+Shift+T' } as const;

interface KeyLike {
  key: string;
  ctrlKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
  metaKey: boolean;
}

/** Ctrl+Shift+T (Cmd+Shift+T on a Mac keyboard). */
export function isTakeOverShortcut(e: KeyLike): boolean {
  return (e.ctrlKey || e.metaKey) && e.shiftKey && !e.altKey && e.key.toLowerCase() === 't';
}

/** Keys push-to-talk can use, by `KeyboardEvent.code`. */
export const PTT_KEYS: readonly { code: string; label: string }[] = [
  { code: 'Space', label: 'Space' },
  { code: 'ControlRight', label: 'Right Ctrl' },
  { code: 'F8', label: 'F8' },
  { code: 'F9', label: 'F9' },
];

export interface PushToTalk {
  on: boolean;
  code: string;
}

export const PTT_KEY = 'verbio.pushToTalk';

export function loadPushToTalk(store: KeyValueStore | null): PushToTalk {
  try {
    const saved = JSON.parse(store?.getItem(PTT_KEY) ?? 'null') as Partial<PushToTalk> | null;
    const code = PTT_KEYS.find((k) => k.code === saved?.code)?.code ?? 'Space';
    return { on: saved?.on === true, code };
  } catch {
    return { on: false, code: 'Space' };
  }
}

export function savePushToTalk(store: KeyValueStore | null, ptt: PushToTalk): void {
  try {
    store?.setItem(PTT_KEY, JSON.stringify(ptt));
  } catch {
    // Costs a click next time, nothing more.
  }
}

interface PttEvent {
  type: string;
  code: string;
  repeat: boolean;
  /** The key went to a text field (typing a whisper): a space there is a space. */
  inText: boolean;
}

/**
 * What a key event does to the microphone under push-to-talk: `false` opens it (the key went down), `true`
 * mutes it again (the key came up), `null` leaves it. Key repeats and typing in a text field do nothing.
 */
export function pttMute(e: PttEvent, ptt: PushToTalk): boolean | null {
  if (!ptt.on || e.code !== ptt.code || e.repeat) return null;
  if (e.type === 'keydown') return e.inText ? null : false;
  if (e.type === 'keyup') return true;
  return null;
}

/** Whether a key event's target takes text (where Space types a space). */
export function isTextTarget(target: EventTarget | null): boolean {
  if (typeof HTMLElement === 'undefined' || !(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  return target instanceof HTMLInputElement && !['checkbox', 'radio', 'button', 'submit', 'range'].includes(target.type);
}

/**
 * What a failed operator action tells the person at the desk. The core's codes come first; anything else
 * keeps the core's message. Where the agent goes on with the call, it says so.
 */
export function operatorErrorText(error: unknown, fallback: (e: unknown) => string): string {
  const body = errorBody(error);
  switch (body?.code) {
    case 'no_input_device':
      return 'No microphone found — the agent keeps the call.';
    case 'input_device_unusable':
      return `The microphone could not be opened — the agent keeps the call. (${body.message})`;
    case 'operator_busy':
      return 'You already hold another call: hand it back first (one microphone, one call).';
    case 'already_held':
      return 'You already hold this call.';
    case 'not_held':
      return 'You do not hold this call any more: the agent has it.';
    case 'unknown_call':
    case 'already_ended':
    case 'not_found':
      return 'This call has ended.';
    default:
      return fallback(error);
  }
}
