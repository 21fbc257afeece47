import { describe, expect, it } from 'vitest';
import { applyEvent, emptyCalls, mergeTranscripts, type CallsState, type TranscriptLine } from './calls';
import {
  applyApprovalEvent,
  approvalKey,
  approvalsFor,
  approvalTimeoutProblem,
  decideErrorText,
  draftToServer,
  emptyMcpDraft,
  endpointUrlProblem,
  joinArgs,
  makeTool,
  markDecided,
  newToolProblems,
  secretText,
  mcpDraftProblems,
  mcpServerProblems,
  mcpStatusText,
  mcpToolRows,
  patchTool,
  pruneSettled,
  secondsLeft,
  serverToDraft,
  setMcpAllowed,
  setMcpNeedsApproval,
  settledText,
  shortArguments,
  splitArgs,
  toolForSave,
  toolLineText,
  toolMeta,
  toolProblems,
  toolStateText,
  toolTimeoutProblem,
  unanswered,
  withMcpStatus,
  withPending,
  SETTLED_SHOWN_MS,
  type ApprovalsState,
  type ToolInfoLine,
} from './tools';
import type { CallEvent, FunctionTool, McpServer } from './types';

/** The value, or the test fails here. */
function must<T>(value: T | null | undefined): T {
  if (value === null || value === undefined) throw new Error('missing');
  return value;
}

/** The first entry of CA1 as a line, and its tool. */
const firstLine = (s: CallsState): TranscriptLine => must(s.calls.CA1?.entries[0]) as TranscriptLine;
const firstTool = (s: CallsState): ToolInfoLine => must(firstLine(s).tool);

const asked = (sid: string, id: string, at: number, expires = at + 30_000): CallEvent => ({
  type: 'tool_approval_requested',
  call_sid: sid,
  call_id: id,
  tool: 'refund',
  arguments: '{"order":42}',
  expires_at_ms: expires,
  at_ms: at,
});

const settled = (sid: string, id: string, approved: boolean, by: string, at: number): CallEvent => ({
  type: 'tool_approval_settled',
  call_sid: sid,
  call_id: id,
  approved,
  by,
  at_ms: at,
});

const startedTool = (sid: string, id: string, needsApproval: boolean, at: number): CallEvent => ({
  type: 'tool_started',
  call_sid: sid,
  call_id: id,
  tool: 'lookup_order',
  arguments: '{"order":"42"}',
  needs_approval: needsApproval,
  offset_ms: 4200,
  at_ms: at,
});

const finished = (sid: string, id: string, fields: Partial<Extract<CallEvent, { type: 'tool_finished' }>> = {}): CallEvent => ({
  type: 'tool_finished',
  call_sid: sid,
  call_id: id,
  tool: 'lookup_order',
  arguments: '{"order":"42"}',
  outcome: 'ok',
  output: '{"status":"shipped"}',
  error: null,
  failure: null,
  latency_ms: 120,
  approved_by: 'window',
  offset_ms: 4200,
  at_ms: 9000,
  ...fields,
});

describe('how a tool call reads', () => {
  it('shows arguments short and readable', () => {
    expect(shortArguments('{"order":42,"reason":"late"}')).toBe('{order: 42, reason: "late"}');
    expect(shortArguments('[1,2]')).toBe('[1,2]');
    expect(shortArguments(' not json ')).toBe('not json');
    const long = shortArguments(JSON.stringify({ text: 'x'.repeat(500) }), 40);
    expect([...long]).toHaveLength(40);
    expect(long.endsWith('…')).toBe(true);
  });

  it('writes the line exactly as the core stores it', () => {
    expect(toolLineText(finished('CA1', 'fc_1') as never)).toBe(
      'lookup_order {"order":"42"} → {"status":"shipped"} (120 ms, approved (window))',
    );
    expect(
      toolLineText({ tool: 'refund', arguments: '{}', outcome: 'declined', output: null, error: 'the operator declined refund', latency_ms: 3000, approved_by: null }),
    ).toBe('refund {} → declined: the operator declined refund (3000 ms)');
    expect(toolLineText({ tool: 't', arguments: '{}', outcome: 'cancelled', output: null, error: null, latency_ms: 5, approved_by: null })).toBe(
      't {} → cancelled (5 ms)',
    );
    // The core cuts the output at 300 characters (Unicode scalars, as here).
    const out = toolLineText({ tool: 't', arguments: '{}', outcome: 'ok', output: '😀'.repeat(400), error: null, latency_ms: 1, approved_by: null });
    expect([...must(must(out.split('→ ')[1]).split(' (')[0])]).toHaveLength(300);
  });

  it('says how a settled approval ended', () => {
    expect(settledText(true, 'window')).toBe('Approved');
    expect(settledText(true, 'notification')).toBe('Approved from the notification');
    expect(settledText(false, 'timeout')).toBe('Declined — no answer in time');
    expect(settledText(false, 'api')).toBe('Declined through the API');
  });
});

describe('tool lines in the live transcript', () => {
  it('shows a running line that the result replaces', () => {
    let s = applyEvent(emptyCalls(), startedTool('CA1', 'fc_1', false, 5000));
    expect(firstLine(s).speaker).toBe('tool');
    expect(toolStateText(firstTool(s))).toBe('Running lookup_order…');
    s = applyEvent(s, finished('CA1', 'fc_1', { approved_by: null }));
    expect(s.calls.CA1?.entries).toHaveLength(1);
    expect(firstTool(s).state).toBe('ok');
    expect(firstTool(s).result).toBe('{"status":"shipped"}');
    expect(toolStateText(firstTool(s))).toBe('lookup_order done');
    expect(toolMeta(firstTool(s))).toBe('120 ms');
    expect(firstLine(s).text).toBe('lookup_order {"order":"42"} → {"status":"shipped"} (120 ms)');
  });

  it('follows an approval: waiting, running once approved, who approved', () => {
    let s = applyEvent(emptyCalls(), startedTool('CA1', 'fc_1', true, 5000));
    s = applyEvent(s, asked('CA1', 'fc_1', 5001));
    const tool = () => firstTool(s);
    expect(tool().state).toBe('waiting');
    expect(toolStateText(tool())).toBe('Waiting for your approval to run lookup_order…');
    s = applyEvent(s, settled('CA1', 'fc_1', true, 'notification', 6000));
    expect(tool().state).toBe('running');
    s = applyEvent(s, finished('CA1', 'fc_1', { approved_by: 'notification' }));
    expect(toolMeta(tool())).toBe('120 ms · approved from the notification');
  });

  it('shows a declined tool with its reason', () => {
    let s = applyEvent(emptyCalls(), startedTool('CA1', 'fc_1', true, 5000));
    s = applyEvent(s, settled('CA1', 'fc_1', false, 'timeout', 35_000));
    s = applyEvent(s, finished('CA1', 'fc_1', { outcome: 'declined', output: null, error: 'the operator did not approve lookup_order in time, so it was not done', approved_by: null }));
    expect(firstTool(s).state).toBe('declined');
    expect(firstTool(s).result).toContain('did not approve');
  });

  it('is not shown twice when the stored tool line is merged in', () => {
    let s = applyEvent(emptyCalls(), { type: 'call_started', call_sid: 'CA1', stream_sid: 'MZ1', from: null, to: null, at_ms: 1000 });
    s = applyEvent(s, startedTool('CA1', 'fc_1', false, 5000));
    s = applyEvent(s, finished('CA1', 'fc_1'));
    const stored = [{ speaker: 'tool' as const, text: 'lookup_order {"order":"42"} → {"status":"shipped"} (120 ms, approved (window))', offset_ms: 4200 }];
    expect(mergeTranscripts(s, 'CA1', stored)).toBe(s);
  });

  it('adds a line for a tool whose start was missed', () => {
    const s = applyEvent(emptyCalls(), finished('CA1', 'fc_9'));
    expect(firstTool(s).callId).toBe('fc_9');
  });
});

describe('approvals', () => {
  it('opens a card, settles it, then lets it go', () => {
    let s: ApprovalsState = applyApprovalEvent({}, asked('CA1', 'fc_1', 1000));
    expect(unanswered(s)).toHaveLength(1);
    expect(secondsLeft(must(s[approvalKey('CA1', 'fc_1')]), 1000)).toBe(30);
    expect(secondsLeft(must(s[approvalKey('CA1', 'fc_1')]), 400)).toBe(30);
    expect(secondsLeft(must(s[approvalKey('CA1', 'fc_1')]), 30_500)).toBe(1);
    expect(secondsLeft(must(s[approvalKey('CA1', 'fc_1')]), 99_000)).toBe(0);
    s = applyApprovalEvent(s, settled('CA1', 'fc_1', false, 'timeout', 31_000));
    expect(unanswered(s)).toHaveLength(0);
    expect(approvalsFor(s, 'CA1')[0]?.settled).toEqual({ approved: false, by: 'timeout', atMs: 31_000 });
    expect(pruneSettled(s, 31_000 + SETTLED_SHOWN_MS - 1)).toBe(s);
    expect(pruneSettled(s, 31_000 + SETTLED_SHOWN_MS)).toEqual({});
  });

  it('keeps the first answer, and the window answer shows at once', () => {
    let s = applyApprovalEvent({}, asked('CA1', 'fc_1', 1000));
    s = markDecided(s, 'CA1', 'fc_1', true, 2000);
    const after = applyApprovalEvent(s, settled('CA1', 'fc_1', true, 'window', 2001));
    expect(after).toBe(s);
    expect(approvalsFor(s, 'CA1')[0]?.settled?.approved).toBe(true);
  });

  it('ignores other events and drops a call that ended', () => {
    const s = applyApprovalEvent(applyApprovalEvent({}, asked('CA1', 'fc_1', 1000)), asked('CA2', 'fc_2', 1500));
    expect(applyApprovalEvent(s, { type: 'barge_in', call_sid: 'CA1', item_id: 'i', heard_ms: 1, at_ms: 1 })).toBe(s);
    const ended = applyApprovalEvent(s, { type: 'call_ended', call_sid: 'CA1', reason: 'x', failed: false, at_ms: 2000 });
    expect(Object.values(ended).map((a) => a.callSid)).toEqual(['CA2']);
    // A tool cancelled while waiting leaves nothing to answer.
    expect(applyApprovalEvent(s, finished('CA2', 'fc_2', { outcome: 'cancelled' }))[approvalKey('CA2', 'fc_2')]).toBeUndefined();
  });

  it('re-reads the waiting list: adds missed questions, drops ones answered elsewhere', () => {
    let s = applyApprovalEvent({}, asked('CA1', 'fc_old', 1000));
    s = applyApprovalEvent(s, asked('CA1', 'fc_done', 1000));
    s = applyApprovalEvent(s, settled('CA1', 'fc_done', true, 'api', 1500));
    const next = withPending(s, [
      { call_sid: 'CA1', call_id: 'fc_new', tool: 'refund', arguments: '{}', asked_at_ms: 900, expires_at_ms: 30_900 },
    ]);
    expect(approvalsFor(next, 'CA1').map((a) => a.callId)).toEqual(['fc_new', 'fc_done']);
  });

  it('explains an answer that came too late', () => {
    expect(decideErrorText({ code: 'not_pending', message: 'x' })).toBe('Already answered, or the time to answer ran out.');
    expect(decideErrorText({ code: 'not_found', message: 'x' })).toBe('The call has ended.');
    expect(decideErrorText({ code: 'other', message: 'boom' })).toBe('boom');
  });
});

describe('HTTP tools', () => {
  it('takes https anywhere and http on this machine only', () => {
    expect(endpointUrlProblem('https://orders.example.com/lookup')).toBeNull();
    expect(endpointUrlProblem('http://localhost:8080/x')).toBeNull();
    expect(endpointUrlProblem('http://127.0.0.1:9000/x')).toBeNull();
    expect(endpointUrlProblem('http://127.3.4.5/x')).toBeNull();
    expect(endpointUrlProblem('http://[::1]:9000/x')).toBeNull();
    expect(endpointUrlProblem('http://orders.example.com/x')).toMatch(/only for this machine/);
    expect(endpointUrlProblem('http://127.example.com/x')).toMatch(/only for this machine/);
    expect(endpointUrlProblem('http://10.0.0.1/x')).toMatch(/only for this machine/);
    expect(endpointUrlProblem('ftp://example.com')).toBe('Use an https:// address.');
    expect(endpointUrlProblem('orders')).toMatch(/Not a web address/);
    expect(endpointUrlProblem('')).toMatch(/Enter the address/);
    expect(endpointUrlProblem('https://user:pw@example.com')).toMatch(/user name/);
  });

  it('checks timeouts and the approval wait', () => {
    expect(toolTimeoutProblem(undefined)).toBeNull();
    expect(toolTimeoutProblem(8000)).toBeNull();
    expect(toolTimeoutProblem(50)).not.toBeNull();
    expect(toolTimeoutProblem(1.5)).not.toBeNull();
    expect(approvalTimeoutProblem(30)).toBeNull();
    expect(approvalTimeoutProblem(4)).not.toBeNull();
    expect(approvalTimeoutProblem(301)).not.toBeNull();
  });

  it('leaves unset fields out of what is saved', () => {
    const def: FunctionTool = { name: 'lookup', description: 'd', parameters: {} };
    expect(toolForSave(patchTool(def, { needs_approval: false, endpoint: null }))).toEqual(def);
    expect(toolForSave({ ...def, endpoint: { url: '  ' } })).toEqual(def);
    expect(toolForSave({ ...def, needs_approval: true, endpoint: { url: ' https://x.test/a ' } })).toEqual({
      ...def,
      needs_approval: true,
      endpoint: { url: 'https://x.test/a', timeout_ms: 8000 },
    });
    expect(toolProblems([{ ...def, endpoint: { url: 'http://x.test', timeout_ms: 10 } }])).toEqual({
      'endpoint:lookup': expect.stringMatching(/only for this machine/),
      'endpoint_timeout:lookup': expect.stringMatching(/milliseconds/),
    });
  });
});

describe('MCP servers', () => {
  const server: McpServer = {
    name: 'orders',
    transport: { type: 'stdio', command: 'npx', args: ['-y', '@acme/orders mcp'], env: { TOKEN: 'x' } },
    allowed_tools: ['lookup'],
    needs_approval: [],
  };

  it('splits and joins arguments like a shell', () => {
    expect(splitArgs(`-y "@acme/orders mcp" 'a b' c""`)).toEqual(['-y', '@acme/orders mcp', 'a b', 'c']);
    expect(splitArgs('  ')).toEqual([]);
    expect(splitArgs('""')).toEqual(['']);
    expect(splitArgs(joinArgs(['a b', 'say "hi"', '', 'x']))).toEqual(['a b', 'say "hi"', '', 'x']);
  });

  it('edits a server through a draft and keeps its tool choices', () => {
    const draft = serverToDraft(server);
    expect(draft).toEqual({ name: 'orders', kind: 'stdio', command: 'npx', args: '-y "@acme/orders mcp"', env: 'TOKEN=x', url: '' });
    expect(draftToServer(draft, server)).toEqual(server);
    const http = draftToServer({ ...emptyMcpDraft(), name: 'cal', kind: 'http', url: ' https://mcp.example.com/mcp ' });
    expect(http).toEqual({ name: 'cal', transport: { type: 'http', url: 'https://mcp.example.com/mcp' }, allowed_tools: [], needs_approval: [] });
  });

  it('validates a draft', () => {
    expect(mcpDraftProblems(serverToDraft(server), [])).toEqual({});
    expect(mcpDraftProblems({ ...emptyMcpDraft(), name: 'orders' }, ['orders'])).toEqual({
      name: 'There is already a server named orders.',
      command: 'The command that starts the server.',
    });
    expect(mcpDraftProblems({ ...emptyMcpDraft(), name: 'a b', command: 'x', env: 'oops' }, [])).toEqual({
      name: expect.stringMatching(/short name/),
      env: 'Not KEY=value: oops',
    });
    expect(mcpDraftProblems({ ...emptyMcpDraft(), name: 'h', kind: 'http', url: 'http://mcp.example.com' }, []).url).toMatch(/only for this machine/);
    expect(mcpServerProblems([server, server])).toEqual({ 'mcp:orders': 'There is already a server named orders.' });
  });

  it('lists every tool the server offers, with the choices', () => {
    const status = { name: 'orders', state: 'ready' as const, message: null, tools: [{ name: 'lookup', description: 'Find an order' }, { name: 'cancel' }] };
    expect(mcpToolRows(server, status)).toEqual([
      { name: 'lookup', description: 'Find an order', allowed: true, needsApproval: false, listed: true },
      { name: 'cancel', description: '', allowed: false, needsApproval: false, listed: true },
    ]);
    // A chosen tool the server does not list (yet) stays, marked.
    expect(mcpToolRows(server, null)).toEqual([{ name: 'lookup', description: '', allowed: true, needsApproval: false, listed: false }]);
    const approving = setMcpNeedsApproval(server, 'cancel', true);
    expect(approving.allowed_tools).toEqual(['lookup', 'cancel']);
    expect(approving.needs_approval).toEqual(['cancel']);
    const withdrawn = setMcpAllowed(approving, 'cancel', false);
    expect(withdrawn.allowed_tools).toEqual(['lookup']);
    expect(withdrawn.needs_approval).toEqual([]);
  });

  it('says how each server is doing', () => {
    expect(mcpStatusText(null).tone).toBe('muted');
    expect(mcpStatusText({ name: 'a', state: 'ready', message: null, tools: [{ name: 'x' }] }).text).toBe('Ready — lists 1 tool');
    expect(mcpStatusText({ name: 'a', state: 'starting', message: null, tools: [] }).text).toBe('Starting…');
    const failed = mcpStatusText({ name: 'a', state: 'failed', message: 'exited with status 1', tools: [] });
    expect(failed).toEqual({ text: 'Failed: exited with status 1 — its tools are withdrawn from new calls', tone: 'error' });
    const map = withMcpStatus({}, { name: 'a', state: 'ready', message: undefined as never, tools: undefined as never });
    expect(map.a).toEqual({ name: 'a', state: 'ready', message: null, tools: [] });
  });
});

describe('adding a function tool', () => {
  it('checks the name, the description and the schema', () => {
    expect(newToolProblems('lookup_order', 'Find it', '{"type":"object","properties":{}}', [])).toEqual({});
    const bad = newToolProblems('end_call', ' ', '[1]', []);
    expect(Object.keys(bad).sort()).toEqual(['description', 'name', 'parameters']);
    expect(newToolProblems('x', 'd', '{', []).parameters).toMatch(/^Not JSON/);
    expect(newToolProblems('lookup', 'd', '{}', ['lookup']).name).toBe('There is already a tool named lookup.');
    expect(newToolProblems('has space', 'd', '{}', []).name).toMatch(/Letters, digits/);
    expect(makeTool(' lookup ', ' Find ', '{"type":"object"}')).toEqual({ name: 'lookup', description: 'Find', parameters: { type: 'object' } });
  });

  it('describes the signing secret without its value', () => {
    expect(secretText({ source: 'missing', env_var: 'V', masked: null })).toMatch(/Not signed yet/);
    expect(secretText({ source: 'keychain', env_var: 'V', masked: 'abc…wxyz' })).toBe('Signed (secret abc…wxyz, in the system keychain).');
    expect(secretText({ source: 'env', env_var: 'VERBIO_TOOL_SECRET_LOOKUP', masked: 'a…b' })).toBe('Signed with the secret in VERBIO_TOOL_SECRET_LOOKUP.');
  });
});
