// The tools that do real work (issue 14), as the window shows them: the operator's approval prompts (folded
// from the call events and the core's pending list), how a tool call reads in the transcript, and how the
// Session panel validates HTTP endpoints and MCP servers. Pure and immutable, so it is unit-tested.

import { errorCode, errorMessage } from './format';
import type {
  CallEvent,
  FunctionTool,
  McpServer,
  McpServerStatus,
  McpToolInfo,
  PendingApproval,
  ToolCallRecord,
} from './types';

// ---- How a tool call reads ----

/** Longest arguments a prompt or a running line shows. */
export const SHOWN_ARGUMENTS_CHARS = 160;

function cut(text: string, max: number): string {
  const chars = [...text];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : text;
}

/** The model's arguments as people read them: `{"order":42}` → `{order: 42}`, cut short. */
export function shortArguments(json: string, max = SHOWN_ARGUMENTS_CHARS): string {
  let shown: string;
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const pairs = Object.entries(value).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
      shown = `{${pairs.join(', ')}}`;
    } else {
      shown = JSON.stringify(value);
    }
  } catch {
    shown = json.trim();
  }
  return cut(shown, max);
}

/** What an answer's door is called: `window`, `notification`, `api`, `timeout`, … */
function byWhom(by: string): string {
  switch (by) {
    case 'window':
      return '';
    case 'notification':
      return ' from the notification';
    case 'api':
      return ' through the API';
    default:
      return ` (${by})`;
  }
}

/** How a settled approval reads on its card: "Approved", "Declined — no answer in time", … */
export function settledText(approved: boolean, by: string): string {
  if (approved) return `Approved${byWhom(by)}`;
  return by === 'timeout' ? 'Declined — no answer in time' : `Declined${byWhom(by)}`;
}

/**
 * The stored transcript line of a tool call, exactly as the core writes it (`store::tool_calls::transcript_line`),
 * so the line a live event made and the stored one are the same line when a re-sync merges them.
 */
export function toolLineText(r: Pick<ToolCallRecord, 'tool' | 'arguments' | 'outcome' | 'output' | 'error' | 'latency_ms' | 'approved_by'>): string {
  const args = [...r.arguments].slice(0, 200).join('');
  const result =
    r.output !== null
      ? `→ ${[...r.output].slice(0, 300).join('')}`
      : r.error !== null
        ? `→ ${r.outcome}: ${r.error}`
        : `→ ${r.outcome}`;
  const approval = r.approved_by !== null ? `, approved (${r.approved_by})` : '';
  return `${r.tool} ${args} ${result} (${r.latency_ms} ms${approval})`;
}

/** The live state of a tool call in the transcript. */
export type ToolState = 'waiting' | 'running' | ToolCallRecord['outcome'];

/** What a tool line carries besides its text (live lines only; stored ones have the text alone). */
export interface ToolInfoLine {
  callId: string;
  name: string;
  arguments: string;
  state: ToolState;
  /** The output, or the error, once finished. */
  result: string | null;
  latencyMs: number | null;
  approvedBy: string | null;
}

/** The words of a tool line's head: "Running lookup_order…", "lookup_order declined", … */
export function toolStateText(info: ToolInfoLine): string {
  switch (info.state) {
    case 'waiting':
      return `Waiting for your approval to run ${info.name}…`;
    case 'running':
      return `Running ${info.name}…`;
    case 'ok':
      return `${info.name} done`;
    case 'failed':
      return `${info.name} failed`;
    case 'declined':
      return `${info.name} declined`;
    case 'cancelled':
      return `${info.name} cancelled (the call ended)`;
  }
}

/** The small print under a finished tool line: "120 ms · approved (window)". */
export function toolMeta(info: ToolInfoLine): string {
  const parts: string[] = [];
  if (info.latencyMs !== null) parts.push(`${info.latencyMs.toLocaleString('en-US')} ms`);
  if (info.approvedBy !== null) parts.push(`approved${info.approvedBy === 'window' ? '' : byWhom(info.approvedBy)}`);
  return parts.join(' · ');
}

// ---- Approvals ----

export interface ApprovalView {
  callSid: string;
  callId: string;
  tool: string;
  arguments: string;
  askedAtMs: number;
  expiresAtMs: number;
  /** Set once answered (or timed out): the card shows the outcome for a moment, then goes. */
  settled: { approved: boolean; by: string; atMs: number } | null;
}

export type ApprovalsState = Readonly<Record<string, ApprovalView>>;

/** How long a settled card stays to show its outcome. */
export const SETTLED_SHOWN_MS = 6000;

export const approvalKey = (callSid: string, callId: string): string => `${callSid}|${callId}`;

function without(state: ApprovalsState, keep: (a: ApprovalView) => boolean): ApprovalsState {
  const kept = Object.entries(state).filter(([, a]) => keep(a));
  return kept.length === Object.keys(state).length ? state : Object.fromEntries(kept);
}

/** Folds one call event into the approvals; events that are not about approvals return `state` itself. */
export function applyApprovalEvent(state: ApprovalsState, event: CallEvent): ApprovalsState {
  switch (event.type) {
    case 'tool_approval_requested': {
      const key = approvalKey(event.call_sid, event.call_id);
      return {
        ...state,
        [key]: {
          callSid: event.call_sid,
          callId: event.call_id,
          tool: event.tool,
          arguments: event.arguments,
          askedAtMs: event.at_ms,
          expiresAtMs: event.expires_at_ms,
          settled: null,
        },
      };
    }
    case 'tool_approval_settled': {
      const key = approvalKey(event.call_sid, event.call_id);
      const known = state[key];
      if (!known || known.settled) return state;
      return { ...state, [key]: { ...known, settled: { approved: event.approved, by: event.by, atMs: event.at_ms } } };
    }
    case 'tool_finished': {
      // Finished without a settle (cancelled while waiting): nothing is left to answer.
      const known = state[approvalKey(event.call_sid, event.call_id)];
      return known && !known.settled ? without(state, (a) => a !== known) : state;
    }
    case 'call_ended':
      return without(state, (a) => a.callSid !== event.call_sid);
    default:
      return state;
  }
}

/**
 * Reconciles with the core's list of waiting tool calls (read when the window opens, after a restart of the
 * core or lost events): listed ones are added, and unanswered cards the list lacks are dropped (they were
 * answered, or timed out, while the window was not listening).
 */
export function withPending(state: ApprovalsState, pending: readonly PendingApproval[]): ApprovalsState {
  const listed = new Set(pending.map((p) => approvalKey(p.call_sid, p.call_id)));
  const next: Record<string, ApprovalView> = {};
  for (const [key, a] of Object.entries(state)) {
    if (a.settled || listed.has(key)) next[key] = a;
  }
  for (const p of pending) {
    const key = approvalKey(p.call_sid, p.call_id);
    next[key] ??= {
      callSid: p.call_sid,
      callId: p.call_id,
      tool: p.tool,
      arguments: p.arguments,
      askedAtMs: p.asked_at_ms,
      expiresAtMs: p.expires_at_ms,
      settled: null,
    };
  }
  return next;
}

/** Marks a card answered from this window at once (the core's settle event confirms it). */
export function markDecided(state: ApprovalsState, callSid: string, callId: string, approved: boolean, atMs: number): ApprovalsState {
  const key = approvalKey(callSid, callId);
  const known = state[key];
  if (!known || known.settled) return state;
  return { ...state, [key]: { ...known, settled: { approved, by: 'window', atMs } } };
}

/** Drops cards settled more than [`SETTLED_SHOWN_MS`] ago. */
export function pruneSettled(state: ApprovalsState, now: number): ApprovalsState {
  return without(state, (a) => !a.settled || now - a.settled.atMs < SETTLED_SHOWN_MS);
}

/** A call's cards, oldest question first. */
export function approvalsFor(state: ApprovalsState, callSid: string): ApprovalView[] {
  return Object.values(state)
    .filter((a) => a.callSid === callSid)
    .sort((a, b) => a.askedAtMs - b.askedAtMs);
}

/** Questions nobody answered yet, oldest first. */
export function unanswered(state: ApprovalsState): ApprovalView[] {
  return Object.values(state)
    .filter((a) => !a.settled)
    .sort((a, b) => a.askedAtMs - b.askedAtMs);
}

/** Whole seconds left to answer (0 once expired); never more than the whole wait (the window's clock ticks late). */
export function secondsLeft(a: ApprovalView, now: number): number {
  const whole = Math.ceil((a.expiresAtMs - a.askedAtMs) / 1000);
  return Math.min(whole, Math.max(0, Math.ceil((a.expiresAtMs - now) / 1000)));
}

/** What the desk reads when its answer was not taken. */
export function decideErrorText(error: unknown): string {
  switch (errorCode(error)) {
    case 'not_pending':
      return 'Already answered, or the time to answer ran out.';
    case 'not_found':
      return 'The call has ended.';
    default:
      return errorMessage(error);
  }
}

// ---- HTTP tools ----

/** `HttpEndpoint`'s default timeout in the core. */
export const DEFAULT_TOOL_TIMEOUT_MS = 8000;
export const MIN_TOOL_TIMEOUT_MS = 100;
export const MAX_TOOL_TIMEOUT_MS = 60_000;

/** Whether `host` (as `URL.hostname` gives it) is this machine: `localhost`, `127.x.x.x` or `::1`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Why an endpoint URL is refused (https, or plain http on this machine only), or `null`. */
export function endpointUrlProblem(url: string): string | null {
  const text = url.trim();
  if (text === '') return 'Enter the address Verbio should POST to.';
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return 'Not a web address (https://…).';
  }
  if (parsed.username || parsed.password) return 'Leave the user name and password out of the address.';
  if (parsed.protocol === 'https:') return parsed.hostname ? null : 'The address needs a host.';
  if (parsed.protocol === 'http:') {
    return isLoopbackHost(parsed.hostname)
      ? null
      : 'Plain http:// only for this machine (localhost, 127.0.0.1, ::1); use https:// for anything else.';
  }
  return 'Use an https:// address.';
}

/** Why a tool's timeout is refused, or `null` (absent: the default). */
export function toolTimeoutProblem(ms: unknown): string | null {
  if (ms === undefined || ms === null) return null;
  return typeof ms === 'number' && Number.isInteger(ms) && ms >= MIN_TOOL_TIMEOUT_MS && ms <= MAX_TOOL_TIMEOUT_MS
    ? null
    : `A whole number of milliseconds, ${MIN_TOOL_TIMEOUT_MS}–${MAX_TOOL_TIMEOUT_MS.toLocaleString('en-US')}.`;
}

/** `SessionConfig::validate`'s approval timeout range. */
export const MIN_APPROVAL_SECS = 5;
export const MAX_APPROVAL_SECS = 300;
export const DEFAULT_APPROVAL_SECS = 30;

export function approvalTimeoutProblem(secs: unknown): string | null {
  return typeof secs === 'number' && Number.isInteger(secs) && secs >= MIN_APPROVAL_SECS && secs <= MAX_APPROVAL_SECS
    ? null
    : `A whole number of seconds, ${MIN_APPROVAL_SECS}–${MAX_APPROVAL_SECS}.`;
}

/** A function tool with some of its fields changed; an endpoint with an empty URL is removed. */
export function patchTool(def: FunctionTool, patch: Partial<Pick<FunctionTool, 'needs_approval' | 'endpoint'>>): FunctionTool {
  const next: FunctionTool = { ...def, ...patch };
  if (!next.needs_approval) delete next.needs_approval;
  if (next.endpoint === null || next.endpoint === undefined) delete next.endpoint;
  return next;
}

/**
 * A function tool as the core takes it: an unset endpoint and `needs_approval: false` are left out, so a core
 * that does not know these fields yet (its config refuses unknown keys) still takes the tool.
 */
export function toolForSave(def: FunctionTool): FunctionTool {
  const { endpoint, needs_approval, ...rest } = def;
  const out: FunctionTool = { ...rest };
  if (needs_approval) out.needs_approval = true;
  if (endpoint && endpoint.url.trim() !== '') {
    out.endpoint = { url: endpoint.url.trim(), timeout_ms: endpoint.timeout_ms ?? DEFAULT_TOOL_TIMEOUT_MS };
  }
  return out;
}

/** Field → problem for the session's function tools (keys `endpoint:<tool>`, `endpoint_timeout:<tool>`). */
export function toolProblems(tools: readonly FunctionTool[]): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const t of tools) {
    if (!t.endpoint) continue;
    const url = endpointUrlProblem(t.endpoint.url);
    if (url) errors[`endpoint:${t.name}`] = url;
    const timeout = toolTimeoutProblem(t.endpoint.timeout_ms);
    if (timeout) errors[`endpoint_timeout:${t.name}`] = timeout;
  }
  return errors;
}

// ---- MCP servers ----

/** What the MCP card's editor holds while a server is added or edited. */
export interface McpDraft {
  name: string;
  kind: 'stdio' | 'http';
  command: string;
  /** Arguments as typed: split like a shell would (quotes keep spaces). */
  args: string;
  /** `KEY=value` lines. */
  env: string;
  url: string;
}

export function emptyMcpDraft(): McpDraft {
  return { name: '', kind: 'stdio', command: '', args: '', env: '', url: '' };
}

/** `a "b c" 'd'` → `['a', 'b c', 'd']`. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let quote: string | null = null;
  let started = false;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      started = true;
    } else if (/\s/.test(ch)) {
      if (started) out.push(current);
      current = '';
      started = false;
    } else {
      current += ch;
      started = true;
    }
  }
  if (started) out.push(current);
  return out;
}

/** The reverse of [`splitArgs`]: arguments with spaces or quotes are quoted. */
export function joinArgs(args: readonly string[]): string {
  return args.map((a) => (a === '' || /[\s"']/.test(a) ? (a.includes('"') ? `'${a}'` : `"${a}"`) : a)).join(' ');
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return env;
}

/** Server names prefix their tools' names (`McpServerConfig::name`): lower-case letters, digits, `_` and `-`. */
const MCP_NAME = /^[a-z0-9_-]{1,32}$/;

/** Field → problem for a draft (keys `name`, `command`, `url`, `env`); `others` are the other servers' names. */
export function mcpDraftProblems(d: McpDraft, others: readonly string[]): Record<string, string> {
  const errors: Record<string, string> = {};
  const name = d.name.trim();
  if (!MCP_NAME.test(name)) errors.name = 'A short name: lower-case letters, digits, _ and - (up to 32).';
  else if (others.includes(name)) errors.name = `There is already a server named ${name}.`;
  if (d.kind === 'stdio') {
    if (d.command.trim() === '') errors.command = 'The command that starts the server.';
    const bad = d.env.split('\n').find((l) => l.trim() !== '' && !/^\s*[A-Za-z_][A-Za-z0-9_]*\s*=/.test(l));
    if (bad !== undefined) errors.env = `Not KEY=value: ${cut(bad.trim(), 40)}`;
  } else {
    const url = endpointUrlProblem(d.url);
    if (url) errors.url = url;
  }
  return errors;
}

/** The server a draft describes; `base` keeps its tool choices when an existing server is edited. */
export function draftToServer(d: McpDraft, base?: McpServer): McpServer {
  const transport: McpServer['transport'] =
    d.kind === 'stdio'
      ? { type: 'stdio', command: d.command.trim(), args: splitArgs(d.args), env: parseEnv(d.env) }
      : { type: 'http', url: d.url.trim() };
  return {
    name: d.name.trim(),
    transport,
    allowed_tools: base?.allowed_tools ?? [],
    needs_approval: base?.needs_approval ?? [],
    ...(base?.timeout_ms !== undefined ? { timeout_ms: base.timeout_ms } : {}),
  };
}

export function serverToDraft(s: McpServer): McpDraft {
  return s.transport.type === 'stdio'
    ? {
        name: s.name,
        kind: 'stdio',
        command: s.transport.command,
        args: joinArgs(s.transport.args),
        env: Object.entries(s.transport.env ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join('\n'),
        url: '',
      }
    : { name: s.name, kind: 'http', command: '', args: '', env: '', url: s.transport.url };
}

/** How a server is described in its row: `npx -y @x/server` or the URL. */
export function transportText(s: McpServer): string {
  return s.transport.type === 'stdio' ? [s.transport.command, joinArgs(s.transport.args)].filter(Boolean).join(' ') : s.transport.url;
}

/** One tool of an MCP server in the card: listed by the server and/or chosen earlier. */
export interface McpToolRow {
  name: string;
  description: string;
  allowed: boolean;
  needsApproval: boolean;
  /** False for a tool chosen earlier that the server does not list (now, or not yet). */
  listed: boolean;
}

function toolName(t: McpToolInfo | string): McpToolInfo {
  return typeof t === 'string' ? { name: t } : t;
}

/** The server's tools to choose from: every tool it lists, then chosen ones it does not list. */
export function mcpToolRows(server: McpServer, status: McpServerStatus | null | undefined): McpToolRow[] {
  const rows: McpToolRow[] = [];
  const seen = new Set<string>();
  const listed = (status?.tools ?? []).map((t) => toolName(t as McpToolInfo | string));
  for (const t of listed) {
    if (seen.has(t.name)) continue;
    seen.add(t.name);
    rows.push({
      name: t.name,
      description: t.description ?? '',
      allowed: server.allowed_tools.includes(t.name),
      needsApproval: server.needs_approval.includes(t.name),
      listed: true,
    });
  }
  for (const name of server.allowed_tools) {
    if (seen.has(name)) continue;
    seen.add(name);
    rows.push({ name, description: '', allowed: true, needsApproval: server.needs_approval.includes(name), listed: false });
  }
  return rows;
}

function toggled(list: readonly string[], name: string, on: boolean): string[] {
  const rest = list.filter((n) => n !== name);
  return on ? [...rest, name] : rest;
}

/** Allows or withdraws one of a server's tools; a withdrawn tool needs no approval either. */
export function setMcpAllowed(server: McpServer, tool: string, on: boolean): McpServer {
  return {
    ...server,
    allowed_tools: toggled(server.allowed_tools, tool, on),
    needs_approval: on ? server.needs_approval : server.needs_approval.filter((n) => n !== tool),
  };
}

/** Marks one of a server's tools as needing approval (which also allows it). */
export function setMcpNeedsApproval(server: McpServer, tool: string, on: boolean): McpServer {
  return {
    ...server,
    allowed_tools: on && !server.allowed_tools.includes(tool) ? [...server.allowed_tools, tool] : server.allowed_tools,
    needs_approval: toggled(server.needs_approval, tool, on),
  };
}

/** A server's state in words, and its tone. */
export function mcpStatusText(status: McpServerStatus | null | undefined): { text: string; tone: 'ok' | 'warn' | 'error' | 'muted' } {
  if (!status) return { text: 'Not connected yet — save the session to connect', tone: 'muted' };
  switch (status.state) {
    case 'ready': {
      const n = status.tools.length;
      return { text: `Ready — lists ${n} tool${n === 1 ? '' : 's'}`, tone: 'ok' };
    }
    case 'starting':
      return { text: 'Starting…', tone: 'warn' };
    default:
      return {
        text: `Failed${status.message ? `: ${status.message}` : ''} — its tools are withdrawn from new calls`,
        tone: 'error',
      };
  }
}

/** Keeps each server's latest status (from `mcp_statuses` and `mcp_status` events) by name. */
export function withMcpStatus(
  statuses: Readonly<Record<string, McpServerStatus>>,
  status: McpServerStatus,
): Record<string, McpServerStatus> {
  const { name, state, message, tools } = status;
  return { ...statuses, [name]: { name, state, message: message ?? null, tools: tools ?? [] } };
}

/** Field → problem for the session's MCP servers (keys `mcp:<name>`): duplicate names, bad transports. */
export function mcpServerProblems(servers: readonly McpServer[]): Record<string, string> {
  const errors: Record<string, string> = {};
  servers.forEach((s, i) => {
    const others = servers.filter((_, j) => j !== i).map((o) => o.name);
    const problems = mcpDraftProblems(serverToDraft(s), others);
    const first = Object.values(problems)[0];
    if (first) errors[`mcp:${s.name || i}`] = first;
  });
  return errors;
}

// ---- Adding a function tool ----

/** Names the core gives its own tools. */
export const BUILT_IN_TOOL_NAMES: readonly string[] = ['end_call', 'transfer_call'];

/** What a new tool starts with: an object with no properties (the model calls it with `{}`). */
export const EMPTY_PARAMETERS = '{\n  "type": "object",\n  "properties": {}\n}';

/** Field → problem for a new function tool (keys `name`, `description`, `parameters`). */
export function newToolProblems(name: string, description: string, parameters: string, taken: readonly string[]): Record<string, string> {
  const errors: Record<string, string> = {};
  const n = name.trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(n)) errors.name = 'Letters, digits, _ and - (up to 64), as the model will call it.';
  else if (BUILT_IN_TOOL_NAMES.includes(n) || taken.includes(n)) errors.name = `There is already a tool named ${n}.`;
  if (description.trim() === '') errors.description = 'Say what it does: the model decides from this when to call it.';
  try {
    const parsed: unknown = JSON.parse(parameters);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) errors.parameters = 'A JSON Schema object, like {"type": "object", …}.';
  } catch (e) {
    errors.parameters = `Not JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
  return errors;
}

/** The new tool (call only when [`newToolProblems`] found none). */
export function makeTool(name: string, description: string, parameters: string): FunctionTool {
  return { name: name.trim(), description: description.trim(), parameters: JSON.parse(parameters) as unknown };
}

/** How a tool's signing secret is described next to its button. */
export function secretText(status: { source: 'env' | 'keychain' | 'missing'; env_var: string; masked: string | null } | null): string {
  if (!status) return 'Requests are signed once the tool has a secret.';
  switch (status.source) {
    case 'env':
      return `Signed with the secret in ${status.env_var}.`;
    case 'keychain':
      return `Signed (secret ${status.masked ?? 'set'}, in the system keychain).`;
    default:
      return 'Not signed yet: make a secret and give it to your endpoint.';
  }
}
