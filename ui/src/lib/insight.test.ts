import { describe, expect, it } from 'vitest';
import {
  applyInsightEvent,
  budgetShare,
  cappedText,
  emptyInsight,
  formatMs,
  formatUsd,
  lastReaction,
  latencyStats,
  percentile,
  pricingNote,
  pruneInsights,
  warningText,
  withStored,
  type InsightState,
} from './insight';
import type { CallEvent } from './types';

const fold = (events: CallEvent[], start?: number, from: InsightState = {}): InsightState =>
  events.reduce((s, e) => applyInsightEvent(s, e, start), from);

const cost = (source: 'response' | 'transcription' | 'summary', usd: number, total: number, priced = true, model = 'gpt-realtime-2.1'): CallEvent => ({
  type: 'cost',
  call_sid: 'CA1',
  source,
  model,
  cost_usd: usd,
  call_total_usd: total,
  priced,
  at_ms: 5000,
});

const turn = (offset: number, total: number, at = 0): CallEvent => ({
  type: 'turn_latency',
  call_sid: 'CA1',
  offset_ms: offset,
  total_ms: total,
  endpointing_ms: 500,
  model_ms: total - 700,
  playout_ms: 200,
  at_ms: at,
});

describe('insight from events', () => {
  it('keeps the running cost, its sources and what had no price', () => {
    const s = fold([
      cost('response', 0.012, 0.012),
      cost('transcription', 0.001, 0.013, false, 'whisper-9'),
      cost('response', 0.02, 0.033),
      cost('transcription', 0, 0.033, false, 'whisper-9'),
    ]);
    const i = s['CA1'];
    expect(i?.costUsd).toBeCloseTo(0.033);
    expect(i?.bySource.response).toBeCloseTo(0.032);
    expect(i?.bySource.transcription).toBeCloseTo(0.001);
    expect(i?.priced).toBe(false);
    expect(i?.unpricedModels).toEqual(['whisper-9']);
    expect(pricingNote(i ?? emptyInsight())).toBe('price unknown for whisper-9');
    expect(pricingNote(emptyInsight())).toBeNull();
  });

  it('never lets the total go back when events come out of order', () => {
    const s = fold([cost('response', 0.02, 0.03), cost('response', 0.01, 0.01)]);
    expect(s['CA1']?.costUsd).toBeCloseTo(0.03);
  });

  it('records turns by offset, barge-ins on the call axis, budget warnings, budget caps and the summary', () => {
    const s = fold(
      [
        turn(9000, 1400),
        turn(3000, 1100),
        turn(3000, 1100), // a repeat is not a second turn
        { type: 'barge_in', call_sid: 'CA1', item_id: 'i1', heard_ms: 1300, reaction_ms: 180, at_ms: 16_000 },
        { type: 'barge_in', call_sid: 'CA1', item_id: 'i2', heard_ms: 400, at_ms: 21_000 },
        { type: 'budget_warning', call_sid: 'CA1', scope: 'call', spent_usd: 0.41, cap_usd: 0.5, at_ms: 22_000 },
        { type: 'call_capped', call_sid: 'CA1', cap: 'call_length', message: 'long', from: null, to: null, at_ms: 1 },
        { type: 'call_capped', call_sid: 'CA1', cap: 'call_budget', message: 'Goodbye!', from: null, to: null, at_ms: 23_000 },
        { type: 'summary', call_sid: 'CA1', status: 'done', summary: 'Asked for a refund.', disposition: 'refund', fields: { order: '4271' }, error: null, at_ms: 30_000 },
      ],
      10_000,
    );
    const i = s['CA1'];
    expect(i?.turns.map((t) => t.offsetMs)).toEqual([3000, 9000]);
    expect(i?.bargeIns).toEqual([
      { offsetMs: 6000, reactionMs: 180, heardMs: 1300 },
      { offsetMs: 11_000, reactionMs: null, heardMs: 400 },
    ]);
    expect(i?.interruptions).toBe(2);
    expect(lastReaction(i?.bargeIns ?? [])).toBe(180);
    expect(i?.warning).toEqual({ scope: 'call', spentUsd: 0.41, capUsd: 0.5, atMs: 22_000 });
    expect(warningText(i?.warning ?? { scope: 'day', spentUsd: 0, capUsd: 0, atMs: 0 })).toBe(
      "Near this call's budget: $0.41 of $0.50 spent; the agent was asked to wrap up.",
    );
    expect(i?.capped).toEqual({ cap: 'call_budget', message: 'Goodbye!' });
    expect(cappedText({ cap: 'daily_budget', message: '' })).toBe("Today's budget is spent");
    expect(i?.summary).toMatchObject({ status: 'done', disposition: 'refund', fields: { order: '4271' } });
  });

  it('leaves the state alone for other events, and prunes calls no longer kept', () => {
    const s = fold([turn(1000, 900)]);
    const same = applyInsightEvent(s, { type: 'call_ended', call_sid: 'CA1', reason: 'x', failed: false, at_ms: 1 });
    expect(same).toBe(s);
    expect(pruneInsights(s, { CA1: {} })).toBe(s);
    expect(pruneInsights(s, { CA2: {} })).toEqual({});
  });
});

describe('stored figures', () => {
  it('merge with the live ones without doubling, keeping the higher totals', () => {
    const live = fold([turn(3000, 1100), cost('response', 0.01, 0.01)], 0)['CA1'];
    const merged = withStored(
      live,
      {
        p50_ms: 1100,
        p95_ms: 1500,
        max_ms: 1500,
        turns: [
          { offset_ms: 3000, total_ms: 1100, endpointing_ms: 500, model_ms: 400, playout_ms: 200 },
          { offset_ms: 8000, total_ms: 1500, endpointing_ms: 600, model_ms: 700, playout_ms: 200 },
        ],
        barge_ins: [{ offset_ms: 12_000, reaction_ms: 210, heard_ms: 900 }],
        interruptions: 1,
      },
      { total_usd: 0.02, priced: true, unpriced_models: [], by_source: { response: 0.018, transcription: 0.002, summary: 0 } },
    );
    expect(merged.turns.map((t) => t.offsetMs)).toEqual([3000, 8000]);
    expect(merged.bargeIns).toHaveLength(1);
    expect(merged.interruptions).toBe(1);
    expect(merged.costUsd).toBeCloseTo(0.02);
    expect(merged.bySource).toEqual({ response: 0.018, transcription: 0.002, summary: 0 });
    expect(withStored(null, null, null)).toEqual(emptyInsight());
  });

  it('tolerates a core whose latency has no barge-ins', () => {
    const merged = withStored(undefined, { p50_ms: null, p95_ms: null, max_ms: null, turns: [] }, null);
    expect(merged.bargeIns).toEqual([]);
    expect(merged.costUsd).toBeNull();
  });
});

describe('figures', () => {
  it('computes nearest-rank percentiles as the core does', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([700], 95)).toBe(700);
    const ten = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000];
    expect(percentile(ten, 50)).toBe(500);
    expect(percentile(ten, 95)).toBe(1000);
    expect(percentile([3, 1, 2], 50)).toBe(2);
  });

  it('sums up a call’s turns', () => {
    const turns = fold([turn(9000, 1400), turn(3000, 1100), turn(15_000, 900)])['CA1']?.turns ?? [];
    expect(latencyStats(turns)).toMatchObject({ count: 3, p50: 1100, p95: 1400, max: 1400, last: { offsetMs: 15_000, totalMs: 900 } });
    expect(latencyStats([])).toEqual({ count: 0, last: null, p50: null, p95: null, max: null });
  });

  it('formats money and time', () => {
    expect(formatUsd(null)).toBe('—');
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(0.00421)).toBe('$0.0042');
    expect(formatUsd(0.4213)).toBe('$0.42');
    expect(formatUsd(1234.5)).toBe('$1,234.50');
    expect(formatMs(640.4)).toBe('640 ms');
    expect(formatMs(1240)).toBe('1.24 s');
    expect(formatMs(null)).toBe('—');
  });

  it('places the cost against the call’s cap', () => {
    expect(budgetShare(0.1, null)).toEqual({ share: 0, level: 'none' });
    expect(budgetShare(0.1, 0.5, 80)).toEqual({ share: 0.2, level: 'ok' });
    expect(budgetShare(0.4, 0.5, 80).level).toBe('near');
    expect(budgetShare(0.6, 0.5, 80)).toEqual({ share: 1, level: 'over' });
  });
});
