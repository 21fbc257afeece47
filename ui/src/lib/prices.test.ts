import { describe, expect, it } from 'vitest';
import { budgetProblems, emptyPrice, isIsoDay, parseCap, parsePrice, priceProblems, priceRows, tableFromRows } from './prices';
import type { PriceTable } from './types';

const table: PriceTable = {
  as_of: '2026-11-01',
  source: 'https://openai.com/api/pricing',
  currency: 'USD',
  models: {
    'whisper-1': { ...emptyPrice(), audio_per_minute: 0.006, note: 'billed by the minute' },
    'gpt-realtime-2.1': { ...emptyPrice(), text_input: 4, text_cached_input: 0.4, text_output: 16, audio_input: 32, audio_cached_input: 0.4, audio_output: 64 },
  },
};

describe('price table', () => {
  it('edits as rows, by name, and goes back to the same table', () => {
    const rows = priceRows(table);
    expect(rows.map((r) => r.name)).toEqual(['gpt-realtime-2.1', 'whisper-1']);
    expect(tableFromRows(table, rows)).toEqual(table);
    expect(priceProblems(table, rows)).toEqual({});
  });

  it('trims names and drops an empty note', () => {
    const rows = [{ name: ' gpt-x ', price: { ...emptyPrice(), note: '  ' } }];
    expect(tableFromRows({ as_of: ' 2026-01-02 ', source: ' me ' }, rows)).toEqual({
      as_of: '2026-01-02',
      source: 'me',
      currency: 'USD',
      models: { 'gpt-x': emptyPrice() },
    });
  });

  it('names each problem before saving', () => {
    const rows = [
      ...priceRows(table),
      { name: 'whisper-1', price: emptyPrice() },
      { name: '', price: emptyPrice() },
      { name: 'gpt-y', price: { ...emptyPrice(), text_input: -1, audio_per_minute: Number.NaN } },
    ];
    expect(priceProblems({ as_of: '2026-02-30', source: ' ' }, rows)).toEqual({
      as_of: 'The date the prices are from, as YYYY-MM-DD.',
      source: 'Say where the prices come from.',
      'model:2': 'whisper-1 is listed twice.',
      'model:3': 'A model needs a name.',
      'model:4': 'gpt-y: Text in, Audio / min must be a number, 0 or more.',
    });
  });

  it('reads dates and typed prices', () => {
    expect(isIsoDay('2024-02-29')).toBe(true);
    expect(isIsoDay('2023-02-29')).toBe(false);
    expect(isIsoDay('2026-1-01')).toBe(false);
    expect(parsePrice(' 0.5 ')).toBe(0.5);
    expect(parsePrice('')).toBeNull();
    expect(parsePrice('abc')).toBeNaN();
  });
});

describe('budgets', () => {
  const ok = { call_usd: 0.5, daily_usd: 10, wrap_up_percent: 80, goodbye: 'Thanks for calling, goodbye.' };

  it('accepts caps, no caps, and a goodbye line', () => {
    expect(budgetProblems(ok)).toEqual({});
    expect(budgetProblems({ ...ok, call_usd: null, daily_usd: null })).toEqual({});
    expect(parseCap('')).toBeNull();
  });

  it('refuses what the core would', () => {
    expect(budgetProblems({ call_usd: 0, daily_usd: Number.NaN, wrap_up_percent: 0, goodbye: ' ' })).toEqual({
      call_usd: 'An amount above $0, or empty for no cap.',
      daily_usd: 'An amount above $0, or empty for no cap.',
      wrap_up_percent: 'A whole percentage, 1–100.',
      goodbye: 'The line the agent says when the budget ends a call.',
    });
    expect(budgetProblems({ ...ok, wrap_up_percent: 80.5 })).toHaveProperty('wrap_up_percent');
    expect(budgetProblems({ ...ok, goodbye: 'x'.repeat(501) }).goodbye).toBe('At most 500 characters.');
  });
});
