import { describe, expect, it } from 'vitest';
import {
  addTool,
  charCount,
  fieldLabel,
  removeTool,
  updateTool,
  DISABLED_TOOLS_KEY,
  enabledTools,
  FALLBACK_MODELS,
  instructionsCounter,
  loadDisabledTools,
  maxTokensProblem,
  modelOptions,
  saveBlocker,
  saveDisabledTools,
  sessionForSave,
  speedProblem,
  takesReasoning,
  toggleTool,
  toolRows,
  validateSession,
  VOICES,
  voiceLabel,
  withTransferTool,
} from './session';
import { memoryStore } from './storage';
import type { FunctionTool, SessionConfig, ToolInfo } from './types';

const base: SessionConfig = {
  model: 'gpt-realtime-2.1',
  voice: 'marin',
  instructions: 'Be brief.',
  max_output_tokens: 'inf',
  transcription: { model: 'gpt-4o-mini-transcribe' },
  turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
  noise_reduction: 'near_field',
  reasoning_effort: 'low',
  speed: 1,
  tools: [],
  greeting: { mode: 'wait_for_caller' },
};

describe('session form', () => {
  it('offers the ten GA voices', () => {
    expect(VOICES).toHaveLength(10);
    expect(new Set(VOICES).size).toBe(10);
    expect(voiceLabel('cedar')).toBe('Cedar');
    expect(voiceLabel('')).toBe('');
  });

  it('counts characters the way the core does', () => {
    expect(charCount('héllo 👋')).toBe(7);
    expect(instructionsCounter('abc')).toEqual({ text: '3 / 16,000', over: false });
    expect(instructionsCounter('x'.repeat(16_001)).over).toBe(true);
  });

  it('validates like SessionConfig::validate', () => {
    expect(validateSession(base)).toEqual({});
    expect(validateSession({ ...base, speed: 2 })).toHaveProperty('speed');
    const summary = { enabled: true, model: '', dispositions: ['a'], fields_schema: { type: 'object' }, instructions: '' };
    expect(validateSession({ ...base, summary })).toHaveProperty('summary_model');
    expect(validateSession({ ...base, summary: { ...summary, enabled: false } })).toEqual({});
    expect(fieldLabel('summary_fields_schema')).toBe('Summary fields');
    expect(validateSession({ ...base, max_output_tokens: 0 })).toHaveProperty('max_output_tokens');
    expect(validateSession({ ...base, max_output_tokens: 4096 })).toEqual({});
    expect(validateSession({ ...base, greeting: { mode: 'speak_first', opening_line: ' ' } })).toHaveProperty('opening_line');
    expect(
      validateSession({ ...base, turn_detection: { type: 'server_vad', threshold: 1.5, prefix_padding_ms: 0, silence_duration_ms: 0 } }),
    ).toHaveProperty('threshold');
  });

  it('falls back to the built-in models and keeps the current one', () => {
    expect(modelOptions(null, 'gpt-realtime-2.1')).toEqual([...FALLBACK_MODELS]);
    expect(modelOptions(['gpt-realtime-mini'], 'my-deployment')).toEqual(['my-deployment', 'gpt-realtime-mini']);
    expect(takesReasoning('gpt-realtime-2')).toBe(true);
    expect(takesReasoning('gpt-realtime-mini')).toBe(false);
  });
});

const vad = (prefix: unknown, silence: unknown): SessionConfig => ({
  ...base,
  turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: prefix as number, silence_duration_ms: silence as number },
});

describe('session validation shown next to each field', () => {
  it('checks prefix padding and silence duration as whole milliseconds', () => {
    expect(validateSession(vad(0, 10_000))).toEqual({});
    expect(validateSession(vad(5001, 500))).toHaveProperty('prefix_padding_ms');
    expect(validateSession(vad(-1, 500))).toHaveProperty('prefix_padding_ms');
    expect(validateSession(vad(300, 10_001))).toHaveProperty('silence_duration_ms');
    expect(validateSession(vad(300.5, 500))).toHaveProperty('prefix_padding_ms');
    // An emptied number input (null or undefined) is not a number the core accepts.
    expect(validateSession(vad(null, 500))).toHaveProperty('prefix_padding_ms');
    expect(validateSession(vad(300, undefined))).toHaveProperty('silence_duration_ms');
    expect(
      validateSession({ ...base, turn_detection: { type: 'server_vad', threshold: null as unknown as number, prefix_padding_ms: 0, silence_duration_ms: 0 } }),
    ).toHaveProperty('threshold');
  });

  it('flags long instructions and a bad transfer number', () => {
    expect(validateSession({ ...base, instructions: 'x'.repeat(16_001) })).toHaveProperty('instructions');
    expect(validateSession({ ...base, transfer_number: '+0415' }).transfer_number).toContain('never starts with 0');
    expect(validateSession({ ...base, transfer_number: '+1234' })).toHaveProperty('transfer_number');
    expect(validateSession({ ...base, transfer_number: '+14155550100' })).toEqual({});
    expect(validateSession({ ...base, transfer_number: null })).toEqual({});
  });

  it('shares the speed and token ranges', () => {
    expect(speedProblem(0.25)).toBeNull();
    expect(speedProblem(1.5)).toBeNull();
    expect(speedProblem(0.2)).not.toBeNull();
    expect(speedProblem(Number.NaN)).not.toBeNull();
    expect(maxTokensProblem('inf')).toBeNull();
    expect(maxTokensProblem(1)).toBeNull();
    expect(maxTokensProblem(4097)).not.toBeNull();
    expect(maxTokensProblem(1.5)).not.toBeNull();
  });

  it('says why Save is disabled', () => {
    expect(saveBlocker({})).toBeNull();
    expect(saveBlocker({ speed: 'x' })).toBe('Fix Speed to save.');
    expect(saveBlocker({ prefix_padding_ms: 'x', silence_duration_ms: 'y', transfer_number: 'z' })).toBe(
      'Fix Prefix padding, Silence duration and Transfer number to save.',
    );
  });

  it('leaves an unset transfer number out of the saved session', () => {
    expect(sessionForSave({ ...base, transfer_number: null })).not.toHaveProperty('transfer_number');
    expect(sessionForSave({ ...base, transfer_number: '  ' })).not.toHaveProperty('transfer_number');
    expect(sessionForSave({ ...base, transfer_number: '+14155550100' }).transfer_number).toBe('+14155550100');
  });
});

const lookup: FunctionTool = { name: 'lookup_order', description: 'Find an order', parameters: { type: 'object' } };
const book: FunctionTool = { name: 'book', description: 'Book a slot', parameters: { type: 'object' } };
const listed: ToolInfo[] = [
  { name: 'end_call', description: 'Hang up after saying goodbye', built_in: true },
  { name: 'lookup_order', description: 'Find an order', built_in: false },
];

describe('tools', () => {
  it('lists built-ins, the session tools (on) and remembered ones (off)', () => {
    const rows = toolRows(listed, [lookup], [book, lookup]);
    expect(rows.map((r) => [r.name, r.built_in, r.enabled])).toEqual([
      ['end_call', true, true],
      ['lookup_order', false, true],
      ['book', false, false],
    ]);
  });

  it('switches a tool off and back on without losing its definition', () => {
    const rows = toolRows(listed, [lookup, book]);
    const off = toggleTool(rows, 'lookup_order', false);
    expect(off.find((r) => r.name === 'lookup_order')?.enabled).toBe(false);
    expect(enabledTools(off)).toEqual([book]);
    const on = toggleTool(off, 'lookup_order', true);
    expect(enabledTools(on)).toEqual([lookup, book]);
    expect(rows.every((r) => r.enabled)).toBe(true); // pure
  });

  it('never switches a built-in tool', () => {
    const rows = toolRows(listed, []);
    expect(toggleTool(rows, 'end_call', false)[0]?.enabled).toBe(true);
    expect(enabledTools(rows)).toEqual([]);
  });

  it('shows transfer_call only with a valid transfer number', () => {
    const rows = toolRows(listed, [lookup]);
    expect(withTransferTool(rows, null)).toEqual(rows);
    expect(withTransferTool(rows, '+0415').map((r) => r.name)).toEqual(['end_call', 'lookup_order']);
    const shown = withTransferTool(rows, '+14155550100');
    expect(shown.map((r) => r.name)).toEqual(['end_call', 'transfer_call', 'lookup_order']);
    expect(shown[1]).toMatchObject({ built_in: true, enabled: true });
    expect(enabledTools(shown)).toEqual([lookup]);
  });

  it('remembers switched-off tools across panel loads', () => {
    const store = memoryStore();
    const rows = toggleTool(toolRows(listed, [lookup, book]), 'book', false);
    saveDisabledTools(store, rows);
    expect(loadDisabledTools(store)).toEqual([book]);
    saveDisabledTools(store, toggleTool(rows, 'book', true));
    expect(store.data.has(DISABLED_TOOLS_KEY)).toBe(false);
    store.setItem(DISABLED_TOOLS_KEY, '{not json');
    expect(loadDisabledTools(store)).toEqual([]);
    store.setItem(DISABLED_TOOLS_KEY, JSON.stringify([{ name: 5 }, book]));
    expect(loadDisabledTools(store)).toEqual([book]);
    expect(loadDisabledTools(null)).toEqual([]);
  });
});

describe('tools that do real work in the session', () => {
  const lookup: FunctionTool = { name: 'lookup', description: 'Find an order', parameters: { type: 'object', properties: {} } };

  it('adds, changes and removes function tools', () => {
    let rows = toolRows([{ name: 'end_call', description: 'Hang up', built_in: true }], []);
    rows = addTool(rows, lookup);
    expect(enabledTools(rows)).toEqual([lookup]);
    rows = updateTool(rows, 'lookup', { ...lookup, needs_approval: true });
    expect(enabledTools(rows)[0]?.needs_approval).toBe(true);
    // Built-ins cannot be changed or removed.
    expect(updateTool(rows, 'end_call', lookup)).toEqual(rows);
    expect(removeTool(rows, 'end_call')).toEqual(rows);
    expect(enabledTools(removeTool(rows, 'lookup'))).toEqual([]);
  });

  it('refuses bad endpoints and approval waits before saving, naming them', () => {
    const s: SessionConfig = {
      ...base,
      tool_approval_timeout_secs: 2,
      tools: [{ ...lookup, endpoint: { url: 'http://orders.example.com', timeout_ms: 8000 } }],
    };
    const errors = validateSession(s);
    expect(Object.keys(errors).sort()).toEqual(['endpoint:lookup', 'tool_approval_timeout_secs']);
    expect(saveBlocker(errors)).toBe("Fix Approval wait and lookup's endpoint to save.");
    expect(fieldLabel('endpoint_timeout:a:b')).toBe("a:b's timeout");
    expect(fieldLabel('mcp:orders')).toBe('MCP server orders');
    // A core without the field: nothing to check.
    expect(validateSession({ ...base })).toEqual({});
  });

  it('saves tools without unset endpoints or approvals', () => {
    const saved = sessionForSave({ ...base, tools: [{ ...lookup, needs_approval: false, endpoint: null }] });
    expect(saved.tools).toEqual([lookup]);
    expect(Object.keys(saved.tools[0] ?? {})).toEqual(['name', 'description', 'parameters']);
  });
});
