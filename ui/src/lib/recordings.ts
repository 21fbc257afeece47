// Pure helpers of the recordings library: sizes, the waveform's shape, and which transcript line is
// playing.

import { formatMs, formatUsd } from './insight';
import type { RecordingItem } from './types';

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '0 B';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * An SVG path for `peaks` (0–1 each) as mirrored bars in a `width`×`height` box. Values outside 0–1
 * (or NaN) are clamped, so a bad bucket cannot draw outside the box.
 */
export function waveformPath(peaks: readonly number[], width: number, height: number): string {
  if (peaks.length === 0 || width <= 0 || height <= 0) return '';
  const mid = height / 2;
  const step = width / peaks.length;
  const bar = Math.max(step * 0.7, 0.5);
  return peaks
    .map((p, i) => {
      const v = Number.isFinite(p) ? Math.min(Math.max(Math.abs(p), 0), 1) : 0;
      const h = Math.max(v * mid, 0.5);
      const x = (i * step).toFixed(2);
      return `M${x} ${(mid - h).toFixed(2)}h${bar.toFixed(2)}v${(2 * h).toFixed(2)}h${(-bar).toFixed(2)}Z`;
    })
    .join('');
}

/** The index of the transcript turn being heard at `positionMs` (the last one that began), or -1. */
export function activeTurn(turns: readonly { offset_ms: number }[], positionMs: number): number {
  let found = -1;
  for (let i = 0; i < turns.length; i++) {
    const turn = turns[i];
    if (turn && turn.offset_ms <= positionMs) found = i;
    else break;
  }
  return found;
}

/** The position for a click at `x` on a waveform `width` wide, for a recording `durationMs` long. */
export function seekPosition(x: number, width: number, durationMs: number): number {
  if (width <= 0 || durationMs <= 0) return 0;
  return Math.round(Math.min(Math.max(x / width, 0), 1) * durationMs);
}

/** Keyboard seeking on the waveform slider: arrows ±5 s, PageUp/Down ±30 s, Home/End. */
export function keySeek(key: string, positionMs: number, durationMs: number): number | null {
  const clamp = (v: number) => Math.min(Math.max(v, 0), durationMs);
  switch (key) {
    case 'ArrowLeft':
    case 'ArrowDown':
      return clamp(positionMs - 5000);
    case 'ArrowRight':
    case 'ArrowUp':
      return clamp(positionMs + 5000);
    case 'PageDown':
      return clamp(positionMs - 30000);
    case 'PageUp':
      return clamp(positionMs + 30000);
    case 'Home':
      return 0;
    case 'End':
      return durationMs;
    default:
      return null;
  }
}

/** One height per bucket from `Peaks.buckets` (`[caller, agent]`, 0–1 each): the louder side. */
export function mergePeaks(buckets: readonly (readonly [number, number])[]): number[] {
  return buckets.map(([caller, agent]) => Math.max(Number.isFinite(caller) ? caller : 0, Number.isFinite(agent) ? agent : 0));
}

/** The other party of a recorded call: who was called on an outbound call, else the caller. */
export function otherParty(item: Pick<RecordingItem, 'direction' | 'from_number' | 'to_number'>): string | null {
  return item.direction?.startsWith('outbound') ? item.to_number : item.from_number;
}

/** The list grows a page at a time: whether another page may exist after `got` items of a `limit` page. */
export function hasMore(got: number, limit: number): boolean {
  return got >= limit;
}

/**
 * How far a scrolling box must scroll (positive: down) so that a line inside it is fully visible,
 * moving as little as possible; 0 when it already is. A line taller than the box shows its top.
 */
export function scrollDelta(boxTop: number, boxBottom: number, lineTop: number, lineBottom: number): number {
  if (lineTop < boxTop) return lineTop - boxTop;
  if (lineBottom > boxBottom) return Math.min(lineBottom - boxBottom, lineTop - boxTop);
  return 0;
}

/** What a recorded call cost and its p95 turn latency, when known ("$0.0421 · p95 1.24 s"), else `null`. */
export function recordingFigures(item: Pick<RecordingItem, 'cost_usd' | 'p95_ms'>): string | null {
  const parts: string[] = [];
  if (typeof item.cost_usd === 'number') parts.push(formatUsd(item.cost_usd));
  if (typeof item.p95_ms === 'number') parts.push(`p95 ${formatMs(item.p95_ms)}`);
  return parts.length > 0 ? parts.join(' · ') : null;
}
