import { describe, expect, it } from 'vitest';
import { activeTurn, formatBytes, hasMore, keySeek, mergePeaks, otherParty, recordingFigures, scrollDelta, seekPosition, waveformPath } from './recordings';

describe('recordings helpers', () => {
  it('sums up what a call cost and how fast it felt, when known', () => {
    expect(recordingFigures({ cost_usd: 0.0421, p95_ms: 1240 })).toBe('$0.0421 · p95 1.24 s');
    expect(recordingFigures({ cost_usd: 0.5, p95_ms: null })).toBe('$0.50');
    expect(recordingFigures({})).toBeNull();
  });

  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2048)).toBe('2.0 KB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MB');
  });

  it('draws one bar per peak inside the box, clamping bad values', () => {
    const path = waveformPath([0, 0.5, 1, 7, Number.NaN], 100, 40);
    expect(path.match(/M/g)).toHaveLength(5);
    const ys = [...path.matchAll(/M[\d.]+ ([\d.-]+)h[\d.]+v([\d.]+)/g)].map((m) => ({ y: Number(m[1]), h: Number(m[2]) }));
    expect(ys).toHaveLength(5);
    for (const { y, h } of ys) {
      expect(y).toBeGreaterThanOrEqual(0);
      expect(y + h).toBeLessThanOrEqual(40.001);
    }
    expect(waveformPath([], 100, 40)).toBe('');
  });

  it('finds the line being heard', () => {
    const turns = [
      { speaker: 'agent' as const, text: 'a', offset_ms: 0 },
      { speaker: 'caller' as const, text: 'b', offset_ms: 2000 },
      { speaker: 'agent' as const, text: 'c', offset_ms: 5000 },
    ];
    expect(activeTurn(turns, 1999)).toBe(0);
    expect(activeTurn(turns, 2000)).toBe(1);
    expect(activeTurn(turns, 60000)).toBe(2);
    expect(activeTurn([{ offset_ms: 100 }], 50)).toBe(-1);
  });

  it('seeks by click and keyboard', () => {
    expect(seekPosition(50, 200, 10000)).toBe(2500);
    expect(seekPosition(-5, 200, 10000)).toBe(0);
    expect(keySeek('ArrowRight', 8000, 10000)).toBe(10000);
    expect(keySeek('ArrowLeft', 3000, 10000)).toBe(0);
    expect(keySeek('End', 0, 10000)).toBe(10000);
    expect(keySeek('a', 0, 10000)).toBeNull();
  });

  it('draws the louder side of each bucket', () => {
    expect(mergePeaks([[0.1, 0.4], [0.9, 0.2], [Number.NaN, 0.3]])).toEqual([0.4, 0.9, 0.3]);
    expect(mergePeaks([])).toEqual([]);
  });

  it('names the other party and pages', () => {
    expect(otherParty({ direction: 'outbound-api', from_number: '+1', to_number: '+2' })).toBe('+2');
    expect(otherParty({ direction: 'inbound', from_number: '+1', to_number: '+2' })).toBe('+1');
    expect(otherParty({ direction: null, from_number: null, to_number: '+2' })).toBeNull();
    expect(hasMore(50, 50)).toBe(true);
    expect(hasMore(12, 50)).toBe(false);
  });

  it('scrolls a box just enough to show the line being heard', () => {
    // Box from 100 to 360.
    expect(scrollDelta(100, 360, 150, 190)).toBe(0); // visible
    expect(scrollDelta(100, 360, 340, 380)).toBe(20); // below: scroll down by the overflow
    expect(scrollDelta(100, 360, 60, 100)).toBe(-40); // above: scroll up to its top
    expect(scrollDelta(100, 360, 300, 700)).toBe(200); // taller than the box: show its top
  });
});
