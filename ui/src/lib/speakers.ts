// Which output device ("speakers") playback and listen-in use. The choice is a display preference, not a
// secret, so it lives in the webview's localStorage; the core only ever gets a device name or null.

import type { KeyValueStore } from './storage';

/** localStorage key of the chosen output device's name (absent: the system default). */
export const SPEAKER_KEY = 'verbio.speaker';

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

export function loadSpeaker(store: KeyValueStore | null): string | null {
  try {
    return store?.getItem(SPEAKER_KEY) || null;
  } catch {
    return null; // storage disabled: fall back to the default device
  }
}

export function saveSpeaker(store: KeyValueStore | null, device: string | null): void {
  try {
    if (device) store?.setItem(SPEAKER_KEY, device);
    else store?.removeItem(SPEAKER_KEY);
  } catch {
    // A preference that cannot be kept only costs the user a click next time.
  }
}
