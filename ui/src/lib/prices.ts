// The price table editor and the budgets (issue 15): rows to edit, and the checks that mirror the core's
// (`set_prices` rejects `invalid_prices`, `set_budget` rejects `invalid_budget`), so the user sees a problem before
// saving.

import type { Budget, ModelPrice, PriceTable } from './types';

/** A model's price per 1M tokens, by kind; `audio_per_minute` for models billed by the minute. */
export type PriceField = Exclude<keyof ModelPrice, 'note'>;

export const PRICE_FIELDS: readonly { key: PriceField; label: string; unit: string }[] = [
  { key: 'text_input', label: 'Text in', unit: '$ / 1M tokens' },
  { key: 'text_cached_input', label: 'Text cached', unit: '$ / 1M tokens' },
  { key: 'text_output', label: 'Text out', unit: '$ / 1M tokens' },
  { key: 'audio_input', label: 'Audio in', unit: '$ / 1M tokens' },
  { key: 'audio_cached_input', label: 'Audio cached', unit: '$ / 1M tokens' },
  { key: 'audio_output', label: 'Audio out', unit: '$ / 1M tokens' },
  { key: 'audio_per_minute', label: 'Audio / min', unit: '$ / minute (empty: by tokens)' },
];

/** One model of the table, as edited (the name can change). */
export interface PriceRow {
  name: string;
  price: ModelPrice;
}

export function emptyPrice(): ModelPrice {
  return {
    text_input: 0,
    text_cached_input: 0,
    text_output: 0,
    audio_input: 0,
    audio_cached_input: 0,
    audio_output: 0,
    audio_per_minute: null,
    note: null,
  };
}

/** The table's models as rows, by name. */
export function priceRows(table: PriceTable): PriceRow[] {
  return Object.entries(table.models ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, price]) => ({ name, price: { ...emptyPrice(), ...price } }));
}

/** The table to save: its date and source, and the rows (names trimmed; an empty note is no note). */
export function tableFromRows(table: Pick<PriceTable, 'as_of' | 'source'>, rows: readonly PriceRow[]): PriceTable {
  const models: Record<string, ModelPrice> = {};
  for (const row of rows) {
    const note = row.price.note?.trim();
    models[row.name.trim()] = { ...row.price, note: note ? note : null };
  }
  return { as_of: table.as_of.trim(), source: table.source.trim(), currency: 'USD', models };
}

/** A price as typed: a number, `null` for an empty field, `NaN` for anything else. */
export function parsePrice(text: string): number | null {
  const t = text.trim();
  return t === '' ? null : Number(t);
}

/** Whether `day` is a real calendar date written `YYYY-MM-DD`. */
export function isIsoDay(day: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day.trim());
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

const isPrice = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Field → problem for the table being edited (`model:<index>` for a row). */
export function priceProblems(table: Pick<PriceTable, 'as_of' | 'source'>, rows: readonly PriceRow[]): Record<string, string> {
  const errors: Record<string, string> = {};
  if (!isIsoDay(table.as_of)) errors.as_of = 'The date the prices are from, as YYYY-MM-DD.';
  if (table.source.trim() === '') errors.source = 'Say where the prices come from.';
  const seen = new Set<string>();
  rows.forEach((row, i) => {
    const name = row.name.trim();
    const key = `model:${i}`;
    if (name === '') {
      errors[key] = 'A model needs a name.';
    } else if (seen.has(name)) {
      errors[key] = `${name} is listed twice.`;
    } else {
      const bad = PRICE_FIELDS.filter(({ key: k }) => {
        const v = row.price[k];
        return k === 'audio_per_minute' ? v !== null && !isPrice(v) : !isPrice(v);
      });
      if (bad.length > 0) errors[key] = `${name}: ${bad.map((f) => f.label).join(', ')} must be a number, 0 or more.`;
    }
    seen.add(name);
  });
  return errors;
}

// ---- Budgets ----

/** Longest goodbye line accepted here. */
export const MAX_GOODBYE = 500;

/** A cap as typed: empty is no cap. */
export function parseCap(text: string): number | null {
  return parsePrice(text);
}

/** Field → problem for the budgets being edited. */
export function budgetProblems(b: Pick<Budget, 'call_usd' | 'daily_usd' | 'wrap_up_percent' | 'goodbye'>): Record<string, string> {
  const errors: Record<string, string> = {};
  const cap = (v: number | null): boolean => v === null || (Number.isFinite(v) && v > 0);
  if (!cap(b.call_usd)) errors.call_usd = 'An amount above $0, or empty for no cap.';
  if (!cap(b.daily_usd)) errors.daily_usd = 'An amount above $0, or empty for no cap.';
  if (!(Number.isInteger(b.wrap_up_percent) && b.wrap_up_percent >= 1 && b.wrap_up_percent <= 100)) {
    errors.wrap_up_percent = 'A whole percentage, 1–100.';
  }
  if (b.goodbye.trim() === '') errors.goodbye = 'The line the agent says when the budget ends a call.';
  else if ([...b.goodbye].length > MAX_GOODBYE) errors.goodbye = `At most ${MAX_GOODBYE} characters.`;
  return errors;
}
