import { describe, expect, it } from 'vitest';
import {
  addDisposition,
  fieldLabel,
  fieldRows,
  fieldValue,
  parseFieldsSchema,
  removeDisposition,
  schemaFields,
  schemaText,
  summaryProblem,
  summaryProblems,
  DEFAULT_FIELDS_SCHEMA,
} from './summary';
import type { SummaryConfig } from './types';

const cfg: SummaryConfig = {
  enabled: true,
  model: 'gpt-5-mini',
  dispositions: ['resolved', 'callback_requested'],
  fields_schema: { type: 'object', properties: { order_number: { type: 'string' } }, required: ['order_number'] },
  instructions: '',
};

describe('fields schema', () => {
  it('takes a JSON object schema', () => {
    const text = schemaText(cfg.fields_schema);
    expect(parseFieldsSchema(text)).toEqual({ schema: cfg.fields_schema, problem: null });
    expect(schemaFields(cfg.fields_schema)).toEqual(['order_number']);
    expect(parseFieldsSchema(schemaText(undefined)).schema).toEqual(DEFAULT_FIELDS_SCHEMA);
    expect(parseFieldsSchema('{"type": "object"}').problem).toBeNull();
  });

  it('says what is wrong with anything else', () => {
    expect(parseFieldsSchema('{"type": ').problem).toMatch(/^Not valid JSON/);
    expect(parseFieldsSchema('[]').problem).toMatch(/is a JSON object/);
    expect(parseFieldsSchema('{"type": "string"}').problem).toBe('Its "type" must be "object".');
    expect(parseFieldsSchema('{"type": "object", "properties": {"a": 1}}').problem).toMatch(/"properties"/);
    expect(parseFieldsSchema('{"type": "object", "required": "a"}').problem).toBe('"required" is a list of field names.');
    expect(parseFieldsSchema('{"type": "object", "properties": {"a": {}}, "required": ["a", "b"]}').problem).toBe(
      '"required" names fields that are not in "properties": b.',
    );
  });
});

describe('summary settings', () => {
  it('are checked only when the summary is on', () => {
    expect(summaryProblems(cfg)).toEqual({});
    expect(summaryProblems(undefined)).toEqual({});
    expect(summaryProblems({ ...cfg, enabled: false, model: '' })).toEqual({});
    expect(summaryProblems({ ...cfg, model: ' ', dispositions: ['a', 'A'] })).toEqual({
      summary_model: 'Choose the model that writes the summary.',
      summary_dispositions: 'Each disposition once.',
    });
    expect(summaryProblems({ ...cfg, dispositions: ['a', ' '] }).summary_dispositions).toBe('A disposition needs a name.');
  });

  it('edit the disposition list', () => {
    expect(addDisposition(['resolved'], '  escalated ')).toEqual(['resolved', 'escalated']);
    expect(addDisposition(['resolved'], 'Resolved')).toEqual(['resolved']);
    expect(addDisposition(['resolved'], ' ')).toEqual(['resolved']);
    expect(removeDisposition(['a', 'b', 'c'], 1)).toEqual(['a', 'c']);
  });
});

describe('a stored summary', () => {
  it('lists its fields as labels and values', () => {
    expect(fieldRows({ order_number: '4271', callbackTime: null, items: ['a', 'b'], nested: { x: 1 }, VIP: true })).toEqual([
      { key: 'order_number', label: 'Order number', value: '4271' },
      { key: 'callbackTime', label: 'Callback time', value: '—' },
      { key: 'items', label: 'Items', value: 'a, b' },
      { key: 'nested', label: 'Nested', value: '{"x":1}' },
      { key: 'VIP', label: 'VIP', value: 'true' },
    ]);
    expect(fieldRows(null)).toEqual([]);
    expect(fieldLabel('customer_ID')).toBe('Customer ID');
    expect(fieldValue(3)).toBe('3');
  });

  it('shows a failed or invalid one as a problem', () => {
    expect(summaryProblem({ status: 'done', error: null })).toBeNull();
    expect(summaryProblem({ status: 'failed', error: 'HTTP 500' })).toBe('The summary could not be made: HTTP 500');
    expect(summaryProblem({ status: 'invalid', error: null })).toBe('The summary did not match the fields schema.');
  });
});
