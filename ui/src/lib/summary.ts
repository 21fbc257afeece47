// The post-call summary (issue 15): its settings in the session (a disposition list, the fields as a JSON object
// schema) checked before saving, and how a stored summary reads (its fields as a key/value list, a failed or
// invalid one as a visible problem).

import type { SummaryConfig, SummaryRecord } from './types';

/** What the settings start from when the core sends none. */
export const DEFAULT_FIELDS_SCHEMA: Record<string, unknown> = { type: 'object', properties: {}, required: [] };

export function schemaText(schema: unknown): string {
  return JSON.stringify(schema ?? DEFAULT_FIELDS_SCHEMA, null, 2);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The fields schema as typed: a JSON object schema (`"type": "object"`; `properties` an object of schemas;
 * `required` names of those properties), or why not.
 */
export function parseFieldsSchema(text: string): { schema: Record<string, unknown> | null; problem: string | null } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { schema: null, problem: `Not valid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (!isObject(value)) return { schema: null, problem: 'The fields schema is a JSON object ({"type": "object", …}).' };
  if (value.type !== 'object') return { schema: null, problem: 'Its "type" must be "object".' };
  const props = value.properties;
  if (props !== undefined && (!isObject(props) || !Object.values(props).every(isObject))) {
    return { schema: null, problem: '"properties" maps each field to its schema (an object).' };
  }
  const required = value.required;
  if (required !== undefined) {
    if (!Array.isArray(required) || !required.every((r) => typeof r === 'string')) {
      return { schema: null, problem: '"required" is a list of field names.' };
    }
    const missing = required.filter((r) => !isObject(props) || !(r in props));
    if (missing.length > 0) return { schema: null, problem: `"required" names fields that are not in "properties": ${missing.join(', ')}.` };
  }
  return { schema: value, problem: null };
}

/** The field names a schema defines. */
export function schemaFields(schema: unknown): string[] {
  return isObject(schema) && isObject(schema.properties) ? Object.keys(schema.properties) : [];
}

/** Field → problem for the summary settings (the schema's text is checked by `parseFieldsSchema`). */
export function summaryProblems(cfg: SummaryConfig | undefined): Record<string, string> {
  const errors: Record<string, string> = {};
  if (!cfg || !cfg.enabled) return errors;
  if (cfg.model.trim() === '') errors.summary_model = 'Choose the model that writes the summary.';
  const names = cfg.dispositions.map((d) => d.trim().toLowerCase());
  if (names.some((d) => d === '')) errors.summary_dispositions = 'A disposition needs a name.';
  else if (new Set(names).size !== names.length) errors.summary_dispositions = 'Each disposition once.';
  return errors;
}

/** `list` with `name` added at the end (trimmed); unchanged when it is empty or already there. */
export function addDisposition(list: readonly string[], name: string): string[] {
  const n = name.trim();
  if (n === '' || list.some((d) => d.trim().toLowerCase() === n.toLowerCase())) return [...list];
  return [...list, n];
}

export function removeDisposition(list: readonly string[], index: number): string[] {
  return list.filter((_, i) => i !== index);
}

/** `order_number` → `Order number`, `callbackTime` → `Callback time`. */
export function fieldLabel(key: string): string {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim()
    .split(/\s+/)
    // Acronyms (ID, VIP) stay as they are.
    .map((w) => (w.length > 1 && w === w.toUpperCase() ? w : w.toLowerCase()))
    .join(' ');
  return words ? words.charAt(0).toUpperCase() + words.slice(1) : key;
}

/** A field's value as text: strings as they are, nothing as "—", lists and objects as JSON. */
export function fieldValue(v: unknown): string {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.join(', ');
  return JSON.stringify(v);
}

/** The summary's fields as a key/value list, in the order they came. */
export function fieldRows(fields: Record<string, unknown> | null | undefined): { key: string; label: string; value: string }[] {
  return Object.entries(fields ?? {}).map(([key, v]) => ({ key, label: fieldLabel(key), value: fieldValue(v) }));
}

/** A failed or invalid summary, in words (`null` for a good one). */
export function summaryProblem(record: Pick<SummaryRecord, 'status' | 'error'>): string | null {
  const why = record.error?.trim();
  switch (record.status) {
    case 'failed':
      return `The summary could not be made${why ? `: ${why}` : '.'}`;
    case 'invalid':
      return `The summary did not match the fields schema${why ? `: ${why}` : '.'}`;
    default:
      return null;
  }
}
