// Geometry of the hand-drawn SVG charts (issue 15): a call's latency timeline (one stacked bar per answered turn
// along the call, barge-ins as ticks) and the library's per-day chart (bars for a measure, a line for p95). Pure:
// numbers in, coordinates and accessible labels out; the components only draw them.

import { formatDuration } from './format';
import { formatMs, formatUsd, type BargeMark, type TurnMark } from './insight';
import type { DailyStat } from './types';

export interface Box {
  width: number;
  height: number;
}

/** Room for the axes' labels inside the box. */
export interface Padding {
  top: number;
  right: number;
  bottom: number;
  left: number;
}

/** The smallest "nice" number (1, 2, 2.5 or 5 × 10ⁿ) at least `v` (and at least `min`). */
export function niceCeil(v: number, min = 1): number {
  const x = Math.max(Number.isFinite(v) ? v : 0, min);
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * p >= x - 1e-9) return m * p;
  }
  return 10 * p;
}

const round = (v: number): number => Math.round(v * 100) / 100;
const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
const nonNeg = (v: number): number => (Number.isFinite(v) && v > 0 ? v : 0);

/** Time-axis steps: whole seconds and minutes a clock reads well. */
const TIME_STEPS = [10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000];

/** The end of a time axis that covers `ms` (at least 10 s), and its tick step: at most six steps. */
export function timeAxis(ms: number): { max: number; step: number } {
  const v = Math.max(nonNeg(ms), 1);
  const step = TIME_STEPS.find((s) => v / s <= 6) ?? Math.ceil(v / 6 / 3_600_000) * 3_600_000;
  return { max: Math.ceil(v / step) * step, step };
}

export type SegmentKind = 'endpointing' | 'model' | 'playout';

export interface Segment {
  kind: SegmentKind;
  y: number;
  height: number;
}

export interface TimelineBar {
  x: number;
  width: number;
  /** Bottom first: endpointing, model, playout. */
  segments: Segment[];
  /** The top of the bar (its total). */
  top: number;
  label: string;
}

export interface Tick {
  /** Where on its axis (x for the time axis, y for the value axis). */
  at: number;
  label: string;
}

export interface TimelineGeometry {
  bars: TimelineBar[];
  /** Barge-ins: a short mark under the plot. */
  bargeIns: { x: number; label: string }[];
  xTicks: Tick[];
  yTicks: Tick[];
  /** The plot's frame. */
  plot: { left: number; top: number; right: number; bottom: number };
  /** Where the p95 guide is drawn (null: no turns). */
  p95Y: number | null;
  /** One sentence with the numbers, for `aria-label`. */
  summary: string;
}

export const TIMELINE_PADDING: Padding = { top: 8, right: 10, bottom: 20, left: 44 };

/** The label of a turn: where, how long in all, and its parts. */
export function turnLabel(t: TurnMark): string {
  return (
    `Turn at ${formatDuration(t.offsetMs)}: ${formatMs(t.totalMs)} ` +
    `(endpointing ${formatMs(t.endpointingMs)}, model ${formatMs(t.modelMs)}, playout ${formatMs(t.playoutMs)})`
  );
}

export function bargeLabel(b: BargeMark): string {
  const reaction = b.reactionMs === null ? '' : `, agent stopped in ${formatMs(b.reactionMs)}`;
  return `Barge-in at ${formatDuration(b.offsetMs)} (${formatMs(b.heardMs)} of the answer heard${reaction})`;
}

/**
 * A call's latency timeline in `box`: x is the offset in the call (0 to the longer of `durationMs` and the last
 * mark), y the turn's total latency as heard, each bar split into endpointing (bottom), model and playout. Parts
 * that add up to more than the total are scaled down to it; a turn without parts is drawn as playout alone.
 */
export function timelineGeometry(
  turns: readonly TurnMark[],
  bargeIns: readonly BargeMark[],
  durationMs: number,
  box: Box,
  p95Ms: number | null = null,
  pad: Padding = TIMELINE_PADDING,
): TimelineGeometry {
  const plot = {
    left: pad.left,
    top: pad.top,
    right: Math.max(pad.left + 1, box.width - pad.right),
    bottom: Math.max(pad.top + 1, box.height - pad.bottom),
  };
  const plotW = plot.right - plot.left;
  const plotH = plot.bottom - plot.top;
  const lastMark = Math.max(0, ...turns.map((t) => nonNeg(t.offsetMs) + nonNeg(t.totalMs)), ...bargeIns.map((b) => nonNeg(b.offsetMs)));
  const { max: xMax, step: xStep } = timeAxis(Math.max(nonNeg(durationMs), lastMark));
  const yMax = niceCeil(Math.max(0, ...turns.map((t) => nonNeg(t.totalMs)), nonNeg(p95Ms ?? 0)), 500);
  const x = (ms: number): number => round(plot.left + (clamp(nonNeg(ms), 0, xMax) / xMax) * plotW);
  const h = (ms: number): number => (nonNeg(ms) / yMax) * plotH;
  const barW = round(clamp(plotW / Math.max(turns.length * 2, 1), 2, 10));

  const bars = turns.map((t): TimelineBar => {
    const total = nonNeg(t.totalMs);
    let parts: [SegmentKind, number][] = [
      ['endpointing', nonNeg(t.endpointingMs)],
      ['model', nonNeg(t.modelMs)],
      ['playout', nonNeg(t.playoutMs)],
    ];
    const sum = parts.reduce((a, [, v]) => a + v, 0);
    if (sum === 0) parts = [['playout', total]];
    else if (sum > total && total > 0) parts = parts.map(([k, v]) => [k, (v * total) / sum]);
    let y = plot.bottom;
    const segments: Segment[] = [];
    for (const [kind, v] of parts) {
      const height = round(h(v));
      if (height <= 0) continue;
      y = round(y - height);
      segments.push({ kind, y, height });
    }
    const cx = x(t.offsetMs);
    return {
      x: round(clamp(cx - barW / 2, plot.left, plot.right - barW)),
      width: barW,
      segments,
      top: round(plot.bottom - h(Math.max(total, total === 0 ? sum : 0))),
      label: turnLabel(t),
    };
  });

  const xTicks: Tick[] = Array.from({ length: Math.round(xMax / xStep) + 1 }, (_, i) => i * xStep)
    .filter((ms, i, all) => all.length <= 4 || i % 2 === 0 || ms === xMax)
    .map((ms) => ({ at: x(ms), label: formatDuration(ms) }));
  const yTicks: Tick[] = [0, yMax / 2, yMax].map((ms) => ({ at: round(plot.bottom - h(ms)), label: formatMs(ms) }));
  const p95Y = p95Ms === null || turns.length === 0 ? null : round(plot.bottom - h(p95Ms));
  const n = turns.length;
  const summary =
    n === 0
      ? 'No answered turns yet.'
      : `${n} answered turn${n === 1 ? '' : 's'}` +
        (p95Ms === null ? '' : `, p95 ${formatMs(p95Ms)}`) +
        `, slowest ${formatMs(Math.max(...turns.map((t) => nonNeg(t.totalMs))))}` +
        (bargeIns.length > 0 ? `, ${bargeIns.length} barge-in${bargeIns.length === 1 ? '' : 's'}` : '') +
        '.';
  return {
    bars,
    bargeIns: bargeIns.map((b) => ({ x: x(b.offsetMs), label: bargeLabel(b) })),
    xTicks,
    yTicks,
    plot: { left: round(plot.left), top: round(plot.top), right: round(plot.right), bottom: round(plot.bottom) },
    p95Y,
    summary,
  };
}

// ---- The library's per-day chart ----

export type DailyMeasure = 'calls' | 'minutes' | 'cost_usd';

export const DAILY_MEASURES: readonly { id: DailyMeasure; label: string }[] = [
  { id: 'calls', label: 'Calls' },
  { id: 'minutes', label: 'Minutes' },
  { id: 'cost_usd', label: 'Cost' },
];

/** A measure's value as people read it. */
export function formatMeasure(measure: DailyMeasure, v: number): string {
  switch (measure) {
    case 'calls':
      return `${Math.round(v)} call${Math.round(v) === 1 ? '' : 's'}`;
    case 'minutes':
      return `${Number.isInteger(v) || v >= 100 ? Math.round(v) : v.toFixed(1)} min`;
    case 'cost_usd':
      return formatUsd(v);
  }
}

/** A day's every figure, for its bar's title. */
export function dayLabel(d: DailyStat): string {
  return (
    `${d.day}: ${formatMeasure('calls', d.calls)}, ${formatMeasure('minutes', d.minutes)}, ${formatUsd(d.cost_usd)}` +
    (d.p95_ms === null ? ', no answered turns' : `, p95 latency ${formatMs(d.p95_ms)}`)
  );
}

export interface DailyBar {
  x: number;
  y: number;
  width: number;
  height: number;
  label: string;
}

export interface DailyGeometry {
  bars: DailyBar[];
  /** The p95 line (right axis); days without turns break it. */
  p95Path: string;
  p95Points: { x: number; y: number }[];
  /** Left axis (the measure) and right axis (p95). */
  yTicks: Tick[];
  p95Ticks: Tick[];
  /** Some days' names under the bars. */
  xTicks: Tick[];
  plot: { left: number; top: number; right: number; bottom: number };
  summary: string;
}

export const DAILY_PADDING: Padding = { top: 10, right: 48, bottom: 20, left: 48 };

/** `2026-12-05` → `Dec 5` (the day as written, no time zone involved). */
export function shortDay(day: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return day;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${months[Number(m[2]) - 1] ?? m[2]} ${Number(m[3])}`;
}

/**
 * The per-day chart in `box`: a bar per day for `measure` (left axis from 0), and the p95 turn latency as a line
 * (right axis from 0). Every day gets a slot, so gaps read as quiet days.
 */
export function dailyGeometry(days: readonly DailyStat[], measure: DailyMeasure, box: Box, pad: Padding = DAILY_PADDING): DailyGeometry {
  const plot = {
    left: pad.left,
    top: pad.top,
    right: Math.max(pad.left + 1, box.width - pad.right),
    bottom: Math.max(pad.top + 1, box.height - pad.bottom),
  };
  const plotW = plot.right - plot.left;
  const plotH = plot.bottom - plot.top;
  const n = Math.max(days.length, 1);
  const step = plotW / n;
  const barW = round(Math.max(step * 0.7, 1));
  const values = days.map((d) => nonNeg(d[measure]));
  const yMax = niceCeil(Math.max(0, ...values), measure === 'cost_usd' ? 0.01 : 1);
  const p95s = days.map((d) => (d.p95_ms === null ? null : nonNeg(d.p95_ms)));
  const pMax = niceCeil(Math.max(0, ...p95s.map((v) => v ?? 0)), 500);
  const center = (i: number): number => plot.left + step * i + step / 2;

  const bars = days.map((d, i): DailyBar => {
    const height = round(((values[i] ?? 0) / yMax) * plotH);
    return { x: round(center(i) - barW / 2), y: round(plot.bottom - height), width: barW, height, label: dayLabel(d) };
  });
  const p95Points: { x: number; y: number }[] = [];
  let p95Path = '';
  let drawing = false;
  p95s.forEach((v, i) => {
    if (v === null) {
      drawing = false;
      return;
    }
    const pt = { x: round(center(i)), y: round(plot.bottom - (v / pMax) * plotH) };
    p95Points.push(pt);
    p95Path += `${drawing ? 'L' : 'M'}${pt.x} ${pt.y}`;
    drawing = true;
  });
  const tick = (v: number, max: number): number => round(plot.bottom - (v / max) * plotH);
  const yTicks = [0, yMax / 2, yMax].map((v) => ({ at: tick(v, yMax), label: measure === 'calls' || measure === 'minutes' ? String(round(v)) : formatUsd(v) }));
  const p95Ticks = [0, pMax / 2, pMax].map((v) => ({ at: tick(v, pMax), label: formatMs(v) }));
  // First, last, and about every seventh day between.
  const every = Math.max(1, Math.ceil(days.length / 5));
  const xTicks = days
    .map((d, i) => ({ i, d }))
    .filter(({ i }) => i === 0 || i === days.length - 1 || (i % every === 0 && days.length - 1 - i >= every / 2))
    .map(({ i, d }) => ({ at: round(center(i)), label: shortDay(d.day) }));
  const total = (k: 'calls' | 'minutes' | 'cost_usd'): number => days.reduce((a, d) => a + nonNeg(d[k]), 0);
  const worst = Math.max(0, ...p95s.map((v) => v ?? 0));
  const summary =
    days.length === 0
      ? 'No days to show.'
      : `Last ${days.length} days: ${formatMeasure('calls', total('calls'))}, ${formatMeasure('minutes', total('minutes'))}, ` +
        `${formatUsd(total('cost_usd'))}` +
        (p95s.some((v) => v !== null) ? `; worst daily p95 latency ${formatMs(worst)}.` : '; no answered turns.');
  return {
    bars,
    p95Path,
    p95Points,
    yTicks,
    p95Ticks,
    xTicks,
    plot: { left: round(plot.left), top: round(plot.top), right: round(plot.right), bottom: round(plot.bottom) },
    summary,
  };
}
