import { describe, expect, it } from 'vitest';
import { chosenDevice, deviceOptions, loadSpeaker, MICROPHONE_KEY, saveSpeaker, SPEAKER_KEY } from './speakers';
import { memoryStore as memory, type KeyValueStore } from './storage';

describe('speakers', () => {
  it('uses the saved device only while it is still there', () => {
    expect(chosenDevice('USB Headset', ['default', 'USB Headset'])).toBe('USB Headset');
    expect(chosenDevice('USB Headset', ['default'])).toBeNull();
    expect(chosenDevice(null, ['default'])).toBeNull();
    expect(chosenDevice('', ['default', ''])).toBeNull();
  });

  it('offers the system default first, then each device', () => {
    expect(deviceOptions(['pulse', 'hdmi'])).toEqual([
      { value: '', label: 'System default' },
      { value: 'pulse', label: 'pulse' },
      { value: 'hdmi', label: 'hdmi' },
    ]);
    expect(deviceOptions([])).toEqual([{ value: '', label: 'System default' }]);
  });

  it('remembers a choice and forgets it for the default', () => {
    const store = memory();
    expect(loadSpeaker(store)).toBeNull();
    saveSpeaker(store, 'hdmi');
    expect(store.data.get(SPEAKER_KEY)).toBe('hdmi');
    expect(loadSpeaker(store)).toBe('hdmi');
    saveSpeaker(store, null);
    expect(store.data.has(SPEAKER_KEY)).toBe(false);
    expect(loadSpeaker(null)).toBeNull();
  });

  it('survives storage that throws', () => {
    const broken: KeyValueStore = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('denied');
      },
      removeItem: () => {
        throw new Error('denied');
      },
    };
    expect(loadSpeaker(broken)).toBeNull();
    expect(() => saveSpeaker(broken, 'hdmi')).not.toThrow();
  });

  it('keeps the microphone apart from the speakers', () => {
    const store = memory();
    saveSpeaker(store, 'hdmi');
    saveSpeaker(store, 'USB Mic', MICROPHONE_KEY);
    expect(loadSpeaker(store)).toBe('hdmi');
    expect(loadSpeaker(store, MICROPHONE_KEY)).toBe('USB Mic');
    saveSpeaker(store, null, MICROPHONE_KEY);
    expect(store.data.has(MICROPHONE_KEY)).toBe(false);
    expect(loadSpeaker(store)).toBe('hdmi');
  });
});
