// Which output device ("speakers") playback and listen-in use, and which input device (microphone) taking
// over a call uses. The choices are display preferences, not secrets, so they live in the webview's
// localStorage; the core only ever gets a device name or null.

import type { KeyValueStore } from './storage';

/** localStorage key of the chosen output device's name (absent: the system default). */
export const SPEAKER_KEY = 'verbio.speaker';
/** localStorage key of the chosen microphone's name (absent: the system default). */
export const MICROPHONE_KEY = 'verbio.microphone';

/**
 * The device to ask the core for: the saved one while the system still has it, else `null` (the
 * system default). A headset unplugged since it was chosen must not make every play fail.
 */
export function chosenDevice(saved: string | null, available: readonly string[]): string | null {
  return saved && available.includes(saved) ? saved : null;
}

/** Options for the picker: the system default first (value ''), then each device by name. */
export function deviceOptions(available: readonly string[]): { value: string; label: string }[] {
  return [{ value: '', label: 'System default' }, ...available.map((name) => ({ value: name, label: name }))];
}

export function loadSpeaker(store: KeyValueStore | null, key: string = SPEAKER_KEY): string | null {
  try {
    return store?.getItem(key) || null;
  } catch {
    return null; // storage disabled: fall back to the default device
  }
}

export function saveSpeaker(store: KeyValueStore | null, device: string | null, key: string = SPEAKER_KEY): void {
  try {
    if (device) store?.setItem(key, device);
    else store?.removeItem(key);
  } catch {
    // A preference that cannot be kept only costs the user a click next time.
  }
}
