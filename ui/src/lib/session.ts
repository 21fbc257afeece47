// The session form: defaults, validation and the parts of the UI that explain the GA API.

import { e164Problem } from './phone';
import { summaryProblems } from './summary';
import { approvalTimeoutProblem, mcpServerProblems, toolForSave, toolProblems } from './tools';
import type { KeyValueStore } from './storage';
import type { FunctionTool, SessionConfig, ToolInfo, TurnDetection, Voice } from './types';

/** The ten GA voices (`verbio::realtime::session::Voice::ALL`), used when the core cannot be asked. */
export const VOICES: readonly Voice[] = [
  'alloy',
  'ash',
  'ballad',
  'coral',
  'echo',
  'sage',
  'shimmer',
  'verse',
  'marin',
  'cedar',
];

/** A voice as people read it: "cedar" → "Cedar". */
export function voiceLabel(voice: string): string {
  return voice.charAt(0).toUpperCase() + voice.slice(1);
}

/** Built-in model list (`KNOWN_MODELS`), the fallback when the live list cannot be read. */
export const FALLBACK_MODELS: readonly string[] = [
  'gpt-realtime-2.1',
  'gpt-realtime-2.1-mini',
  'gpt-realtime-2',
  'gpt-realtime-1.5',
  'gpt-realtime',
  'gpt-realtime-mini',
];

export const TRANSCRIPTION_MODELS: readonly string[] = ['gpt-4o-mini-transcribe', 'gpt-4o-transcribe', 'whisper-1'];

/** `MAX_INSTRUCTIONS_CHARS` in the core. */
export const MAX_INSTRUCTIONS = 16_000;

/** Shown where the earlier design had a temperature slider. */
export const NO_TEMPERATURE_NOTE =
  'The GA Realtime API has no temperature setting. Use reasoning effort (how much the model thinks before it ' +
  'answers; 2.x models) to trade speed for care, speed for how fast the voice talks, and the instructions ' +
  'for tone and creativity.';

export function takesReasoning(model: string): boolean {
  return model.startsWith('gpt-realtime-2');
}

/** Characters as the core counts them (Unicode scalar values, not UTF-16 units). */
export function charCount(text: string): number {
  return [...text].length;
}

export function instructionsCounter(text: string): { text: string; over: boolean } {
  const n = charCount(text);
  return { text: `${n.toLocaleString('en-US')} / ${MAX_INSTRUCTIONS.toLocaleString('en-US')}`, over: n > MAX_INSTRUCTIONS };
}

export function defaultVad(type: TurnDetection['type']): TurnDetection {
  return type === 'server_vad'
    ? { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 }
    : { type: 'semantic_vad', eagerness: 'auto' };
}

/** `SessionConfig::validate`'s speed range. */
export const MIN_SPEED = 0.25;
export const MAX_SPEED = 1.5;
/** `SessionConfig::validate`'s `max_output_tokens` range (or `"inf"`). */
export const MAX_TOKENS = 4096;
/** Longest prefix padding and silence accepted here (the core takes any u32; these keep turns sane). */
export const MAX_PREFIX_PADDING_MS = 5000;
export const MAX_SILENCE_MS = 10_000;

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Why `speed` is refused, or `null`. */
export function speedProblem(speed: unknown): string | null {
  return isNumber(speed) && speed >= MIN_SPEED && speed <= MAX_SPEED ? null : `Speed is ${MIN_SPEED}–${MAX_SPEED}.`;
}

/** Why `max_output_tokens` is refused, or `null`. */
export function maxTokensProblem(value: unknown): string | null {
  return value === 'inf' || (isNumber(value) && Number.isInteger(value) && value >= 1 && value <= MAX_TOKENS)
    ? null
    : `A whole number from 1 to ${MAX_TOKENS}, or unlimited.`;
}

/** Why instructions are refused, or `null`. */
export function instructionsProblem(text: string): string | null {
  return charCount(text) > MAX_INSTRUCTIONS ? `At most ${MAX_INSTRUCTIONS.toLocaleString('en-US')} characters.` : null;
}

function wholeMs(v: unknown, max: number): string | null {
  return isNumber(v) && Number.isInteger(v) && v >= 0 && v <= max
    ? null
    : `A whole number of milliseconds, 0–${max.toLocaleString('en-US')}.`;
}

/** Field → problem, mirroring `SessionConfig::validate` so the user sees errors before saving. */
export function validateSession(s: SessionConfig): Record<string, string> {
  const errors: Record<string, string> = {};
  const put = (field: string, problem: string | null): void => {
    if (problem) errors[field] = problem;
  };
  if (s.model.trim() === '') errors.model = 'Choose a model.';
  put('speed', speedProblem(s.speed));
  put('max_output_tokens', maxTokensProblem(s.max_output_tokens));
  put('instructions', instructionsProblem(s.instructions));
  if (s.turn_detection.type === 'server_vad') {
    const t = s.turn_detection;
    if (!(isNumber(t.threshold) && t.threshold >= 0 && t.threshold <= 1)) errors.threshold = 'Threshold is 0–1.';
    put('prefix_padding_ms', wholeMs(t.prefix_padding_ms, MAX_PREFIX_PADDING_MS));
    put('silence_duration_ms', wholeMs(t.silence_duration_ms, MAX_SILENCE_MS));
  }
  if (s.greeting.mode === 'speak_first' && s.greeting.opening_line.trim() === '') {
    errors.opening_line = 'Speak-first needs an opening line.';
  }
  if (s.transfer_number) put('transfer_number', e164Problem(s.transfer_number));
  // Absent in a core that predates tool approvals: nothing to check.
  if (s.tool_approval_timeout_secs !== undefined) put('tool_approval_timeout_secs', approvalTimeoutProblem(s.tool_approval_timeout_secs));
  Object.assign(errors, toolProblems(s.tools), mcpServerProblems(s.mcp_servers ?? []), summaryProblems(s.summary));
  return errors;
}

/** How each validated field is named next to the Save button. */
export const FIELD_LABELS: Readonly<Record<string, string>> = {
  model: 'Model',
  opening_line: 'Opening line',
  instructions: 'Instructions',
  speed: 'Speed',
  max_output_tokens: 'Max output tokens',
  threshold: 'Threshold',
  prefix_padding_ms: 'Prefix padding',
  silence_duration_ms: 'Silence duration',
  transfer_number: 'Transfer number',
  tool_approval_timeout_secs: 'Approval wait',
  summary_model: 'Summary model',
  summary_dispositions: 'Dispositions',
  summary_fields_schema: 'Summary fields',
};

/** A field's name next to Save, including the per-tool and per-server ones (`endpoint:<tool>`, `mcp:<server>`). */
export function fieldLabel(field: string): string {
  const [kind, name] = field.split(/:(.*)/s);
  switch (kind) {
    case 'endpoint':
      return `${name}'s endpoint`;
    case 'endpoint_timeout':
      return `${name}'s timeout`;
    case 'mcp':
      return `MCP server ${name}`;
    default:
      return FIELD_LABELS[field] ?? field;
  }
}

/** Why Save is disabled, in words ("Fix Speed and Prefix padding to save."), or `null` when it is not. */
export function saveBlocker(errors: Readonly<Record<string, string>>): string | null {
  const names = Object.keys(errors).map(fieldLabel);
  if (names.length === 0) return null;
  const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  return `Fix ${list} to save.`;
}

/**
 * The session as sent to the core: an unset transfer number is left out (the core then offers no transfer
 * tool), and so are the tools' unset endpoints and approvals (`toolForSave`).
 */
export function sessionForSave(s: SessionConfig): SessionConfig {
  const { transfer_number, ...rest } = s;
  const number = transfer_number?.trim();
  const out: SessionConfig = { ...rest, tools: s.tools.map(toolForSave) };
  return number ? { ...out, transfer_number: number } : out;
}

// ---- Tools: the built-in ones (always on) and the session's function tools (on or off). ----

/** One line of the Tools card. `def` is the definition to put back in `session.tools` when re-enabled. */
export interface ToolRow {
  name: string;
  description: string;
  built_in: boolean;
  enabled: boolean;
  def: FunctionTool | null;
}

/**
 * Every tool to offer: the core's list (`tools` command: built-ins and the session's tools), each of the
 * session's tools (enabled), and tools switched off earlier that are remembered (disabled). Built-ins first.
 */
export function toolRows(
  listed: readonly ToolInfo[],
  sessionTools: readonly FunctionTool[],
  remembered: readonly FunctionTool[] = [],
): ToolRow[] {
  const rows: ToolRow[] = [];
  const seen = new Set<string>();
  for (const t of listed.filter((t) => t.built_in)) {
    if (seen.has(t.name)) continue;
    seen.add(t.name);
    rows.push({ name: t.name, description: t.description, built_in: true, enabled: true, def: null });
  }
  for (const def of sessionTools) {
    if (seen.has(def.name)) continue;
    seen.add(def.name);
    rows.push({ name: def.name, description: def.description, built_in: false, enabled: true, def });
  }
  for (const def of remembered) {
    if (seen.has(def.name)) continue;
    seen.add(def.name);
    rows.push({ name: def.name, description: def.description, built_in: false, enabled: false, def });
  }
  return rows;
}

/** What the Tools card shows when the core cannot list its tools: the one built-in that is always there. */
export const BUILT_IN_TOOLS: readonly ToolInfo[] = [{ name: 'end_call', description: 'Hang up after saying goodbye', built_in: true }];

/** Switches one tool on or off; built-ins (and tools without a definition) cannot be switched. */
export function toggleTool(list: readonly ToolRow[], name: string, on: boolean): ToolRow[] {
  return list.map((row) => (row.name === name && !row.built_in && row.def ? { ...row, enabled: on } : row));
}

/** Replaces one function tool's definition (its approval, its endpoint). */
export function updateTool(list: readonly ToolRow[], name: string, def: FunctionTool): ToolRow[] {
  return list.map((row) => (row.name === name && !row.built_in && row.def ? { ...row, def } : row));
}

/** Adds a new function tool, on, after the others. */
export function addTool(list: readonly ToolRow[], def: FunctionTool): ToolRow[] {
  return [...list, { name: def.name, description: def.description, built_in: false, enabled: true, def }];
}

/** Removes a function tool altogether (built-ins stay). */
export function removeTool(list: readonly ToolRow[], name: string): ToolRow[] {
  return list.filter((row) => row.built_in || row.name !== name);
}

/** `session.tools` for these rows: the enabled function tools, in order. */
export function enabledTools(list: readonly ToolRow[]): FunctionTool[] {
  return list.flatMap((row) => (row.enabled && !row.built_in && row.def ? [row.def] : []));
}

/** Name of the built-in tool the agent uses to hand the caller to a person (`TRANSFER_CALL_TOOL`). */
export const TRANSFER_CALL_TOOL = 'transfer_call';

/** The rows to show: `transfer_call` is on (built in) exactly when a valid transfer number is set. */
export function withTransferTool(list: readonly ToolRow[], transferNumber: string | null | undefined): ToolRow[] {
  const rest = list.filter((row) => !(row.built_in && row.name === TRANSFER_CALL_TOOL));
  if (!transferNumber || e164Problem(transferNumber)) return rest;
  const row: ToolRow = {
    name: TRANSFER_CALL_TOOL,
    description: `Transfer the caller to ${transferNumber}`,
    built_in: true,
    enabled: true,
    def: null,
  };
  const at = rest.filter((r) => r.built_in).length;
  return [...rest.slice(0, at), row, ...rest.slice(at)];
}

/** localStorage key of the tools switched off (their definitions, so they can be switched on again later). */
export const DISABLED_TOOLS_KEY = 'verbio.disabledTools';

function isFunctionTool(v: unknown): v is FunctionTool {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Record<string, unknown>;
  return typeof t.name === 'string' && t.name !== '' && typeof t.description === 'string' && 'parameters' in t;
}

export function loadDisabledTools(store: KeyValueStore | null): FunctionTool[] {
  try {
    const parsed: unknown = JSON.parse(store?.getItem(DISABLED_TOOLS_KEY) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter(isFunctionTool) : [];
  } catch {
    return [];
  }
}

export function saveDisabledTools(store: KeyValueStore | null, list: readonly ToolRow[]): void {
  const off = list.flatMap((row) => (!row.enabled && !row.built_in && row.def ? [row.def] : []));
  try {
    if (off.length > 0) store?.setItem(DISABLED_TOOLS_KEY, JSON.stringify(off));
    else store?.removeItem(DISABLED_TOOLS_KEY);
  } catch {
    // Not remembered: the tool can still be switched on again until the panel is closed.
  }
}

/** The list to offer: the live one if any, the fallback otherwise, always including the current model. */
export function modelOptions(live: readonly string[] | null, current: string): string[] {
  const list = live && live.length > 0 ? [...live] : [...FALLBACK_MODELS];
  if (current && !list.includes(current)) list.unshift(current);
  return list;
}
