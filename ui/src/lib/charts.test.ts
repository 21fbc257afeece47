import { describe, expect, it } from 'vitest';
import { dailyGeometry, dayLabel, formatMeasure, niceCeil, shortDay, timeAxis, timelineGeometry, turnLabel } from './charts';
import type { TurnMark } from './insight';
import type { DailyStat } from './types';

const box = { width: 400, height: 120 };
const pad = { top: 10, right: 10, bottom: 10, left: 10 };
const mark = (offsetMs: number, endpointingMs: number, modelMs: number, playoutMs: number, totalMs = endpointingMs + modelMs + playoutMs): TurnMark => ({
  offsetMs,
  totalMs,
  endpointingMs,
  modelMs,
  playoutMs,
});

describe('niceCeil', () => {
  it('rounds up to 1, 2, 2.5 or 5 × 10ⁿ', () => {
    expect(niceCeil(0)).toBe(1);
    expect(niceCeil(1)).toBe(1);
    expect(niceCeil(1.3)).toBe(2);
    expect(niceCeil(2.2)).toBe(2.5);
    expect(niceCeil(1400, 500)).toBe(2000);
    expect(niceCeil(42_000, 10_000)).toBe(50_000);
    expect(niceCeil(0.0042, 0.01)).toBe(0.01);
    expect(niceCeil(Number.NaN, 500)).toBe(500);
  });
});

describe('time axis', () => {
  it('ends on a whole step a clock reads well, at most six steps', () => {
    expect(timeAxis(0)).toEqual({ max: 10_000, step: 10_000 });
    expect(timeAxis(62_000)).toEqual({ max: 75_000, step: 15_000 });
    expect(timeAxis(100_000)).toEqual({ max: 120_000, step: 30_000 });
    expect(timeAxis(29 * 60_000)).toEqual({ max: 30 * 60_000, step: 300_000 });
    expect(timeAxis(10 * 3_600_000).max).toBeGreaterThanOrEqual(10 * 3_600_000);
  });
});

describe('latency timeline', () => {
  it('puts a stacked bar per turn at its offset, scaled to the slowest', () => {
    // 2 min of call on 380 px; y up to 2 s on 100 px.
    const g = timelineGeometry([mark(20_000, 500, 1000, 500), mark(60_000, 300, 400, 300)], [], 120_000, box, 1000, pad);
    expect(g.plot).toEqual({ left: 10, top: 10, right: 390, bottom: 110 });
    const [a, b] = g.bars;
    expect(a?.x).toBeCloseTo(10 + (380 * 20) / 120 - (a?.width ?? 0) / 2, 1);
    expect(a?.segments.map((s) => [s.kind, s.y, s.height])).toEqual([
      ['endpointing', 85, 25],
      ['model', 35, 50],
      ['playout', 10, 25],
    ]);
    expect(a?.top).toBe(10);
    expect(b?.top).toBe(60);
    expect(g.p95Y).toBe(60);
    expect(a?.label).toBe('Turn at 0:20: 2.00 s (endpointing 500 ms, model 1.00 s, playout 500 ms)');
    expect(g.xTicks.map((t) => t.label)).toEqual(['0:00', '1:00', '2:00']);
    expect(g.yTicks.map((t) => [t.at, t.label])).toEqual([
      [110, '0 ms'],
      [60, '1.00 s'],
      [10, '2.00 s'],
    ]);
    expect(g.summary).toBe('2 answered turns, p95 1.00 s, slowest 2.00 s.');
  });

  it('keeps every mark inside the plot, whatever the figures', () => {
    const g = timelineGeometry(
      [mark(-5, 10, 10, 10), mark(500_000, 900, 900, 900, 1000), mark(1000, 0, 0, 0, 700), mark(2000, Number.NaN, 100, 100)],
      [{ offsetMs: 999_999, reactionMs: 200, heardMs: 1200 }],
      30_000,
      box,
      null,
      pad,
    );
    for (const bar of g.bars) {
      expect(bar.x).toBeGreaterThanOrEqual(g.plot.left);
      expect(bar.x + bar.width).toBeLessThanOrEqual(g.plot.right + 0.01);
      for (const s of bar.segments) {
        expect(s.y).toBeGreaterThanOrEqual(g.plot.top - 0.01);
        expect(s.y + s.height).toBeLessThanOrEqual(g.plot.bottom + 0.01);
      }
    }
    // Parts adding up to more than the total are scaled down to it; a total without parts is one segment.
    const scaled = g.bars[1]?.segments.reduce((a, s) => a + s.height, 0) ?? 0;
    expect(scaled).toBeCloseTo(g.plot.bottom - (g.bars[1]?.top ?? 0), 1);
    expect(g.bars[2]?.segments.map((s) => s.kind)).toEqual(['playout']);
    expect(g.bargeIns[0]?.x).toBeLessThanOrEqual(g.plot.right);
    expect(g.bargeIns[0]?.label).toBe('Barge-in at 16:39 (1.20 s of the answer heard, agent stopped in 200 ms)');
    expect(g.p95Y).toBeNull();
  });

  it('says so when there is nothing yet', () => {
    const g = timelineGeometry([], [], 0, box);
    expect(g.bars).toEqual([]);
    expect(g.summary).toBe('No answered turns yet.');
    expect(g.xTicks.at(-1)?.label).toBe('0:10');
  });

  it('labels a turn with its numbers', () => {
    expect(turnLabel(mark(65_000, 480, 620, 140))).toBe('Turn at 1:05: 1.24 s (endpointing 480 ms, model 620 ms, playout 140 ms)');
  });
});

const day = (d: string, calls: number, minutes: number, cost: number, p95: number | null): DailyStat => ({
  day: d,
  calls,
  minutes,
  cost_usd: cost,
  p95_ms: p95,
});

describe('per-day chart', () => {
  const days = [day('2026-12-01', 4, 12.5, 0.84, 1200), day('2026-12-02', 0, 0, 0, null), day('2026-12-03', 10, 30, 2.1, 900), day('2026-12-04', 2, 3, 0.2, 1500)];

  it('draws a bar per day for the chosen measure and a p95 line broken on quiet days', () => {
    const g = dailyGeometry(days, 'calls', box, pad);
    // 4 slots of 95 px; calls up to 10 on 100 px.
    expect(g.bars.map((b) => [b.x, b.y, b.height])).toEqual([
      [24.25, 70, 40],
      [119.25, 110, 0],
      [214.25, 10, 100],
      [309.25, 90, 20],
    ]);
    expect(g.bars[0]?.width).toBe(66.5);
    // p95 up to 2 s: 1.2 s → y 50.
    expect(g.p95Points).toEqual([
      { x: 57.5, y: 50 },
      { x: 247.5, y: 65 },
      { x: 342.5, y: 35 },
    ]);
    expect(g.p95Path).toBe('M57.5 50M247.5 65L342.5 35');
    expect(g.p95Ticks.at(-1)?.label).toBe('2.00 s');
    expect(g.xTicks[0]?.label).toBe('Dec 1');
    expect(g.xTicks.at(-1)?.label).toBe('Dec 4');
    expect(g.summary).toBe('Last 4 days: 16 calls, 45.5 min, $3.14; worst daily p95 latency 1.50 s.');
    expect(g.bars[1]?.label).toBe('2026-12-02: 0 calls, 0 min, $0.00, no answered turns');
  });

  it('scales cost and minutes on their own axis', () => {
    const cost = dailyGeometry(days, 'cost_usd', box, pad);
    expect(cost.yTicks.map((t) => t.label)).toEqual(['$0.00', '$1.25', '$2.50']);
    expect(cost.bars[2]?.y).toBeCloseTo(110 - (2.1 / 2.5) * 100, 1);
    const minutes = dailyGeometry(days, 'minutes', box, pad);
    expect(minutes.yTicks.at(-1)?.label).toBe('50');
  });

  it('handles no days and a 30-day month of ticks', () => {
    expect(dailyGeometry([], 'calls', box).summary).toBe('No days to show.');
    const month = Array.from({ length: 30 }, (_, i) => day(`2026-11-${String(i + 1).padStart(2, '0')}`, 1, 1, 0.01, null));
    const g = dailyGeometry(month, 'calls', { width: 600, height: 160 });
    expect(g.xTicks.length).toBeLessThanOrEqual(7);
    expect(g.xTicks[0]?.label).toBe('Nov 1');
    expect(g.xTicks.at(-1)?.label).toBe('Nov 30');
    expect(g.p95Path).toBe('');
  });

  it('formats days and measures', () => {
    expect(shortDay('2026-01-09')).toBe('Jan 9');
    expect(shortDay('soon')).toBe('soon');
    expect(formatMeasure('calls', 1)).toBe('1 call');
    expect(formatMeasure('minutes', 2.5)).toBe('2.5 min');
    expect(formatMeasure('cost_usd', 0.5)).toBe('$0.50');
    expect(dayLabel(day('2026-12-01', 4, 12.5, 0.84, 1200))).toBe('2026-12-01: 4 calls, 12.5 min, $0.84, p95 latency 1.20 s');
  });
});
