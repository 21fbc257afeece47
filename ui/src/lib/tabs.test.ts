import { describe, expect, it } from 'vitest';
import { nextTab, TABS } from './tabs';

describe('tabs', () => {
  it('moves with arrows, wraps, and jumps with Home/End', () => {
    expect(TABS.map((t) => t.id)).toEqual(['calls', 'outbound', 'recordings', 'session', 'setup']);
    expect(nextTab('calls', 'ArrowRight')).toBe('outbound');
    expect(nextTab('calls', 'ArrowLeft')).toBe('setup');
    expect(nextTab('setup', 'ArrowRight')).toBe('calls');
    expect(nextTab('session', 'Home')).toBe('calls');
    expect(nextTab('calls', 'End')).toBe('setup');
    expect(nextTab('calls', 'Enter')).toBeNull();
  });
});
