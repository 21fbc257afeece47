// What each call cost and how fast it felt (issue 15): per-call state folded from the `cost`, `budget_warning`,
// `turn_latency`, `barge_in`, `call_capped` and `summary` events, merged with what the core stored (`call_latency`,
// `call_cost`), plus the figures the panels show (percentiles, money, milliseconds). Pure and immutable, like
// `calls.ts`: every change returns a new state.

import type {
  BargeInRecord,
  CallCap,
  CallCost,
  CallEvent,
  CallLatency,
  CostSource,
  SummaryRecord,
  TurnLatencyRecord,
} from './types';

/** One answered turn on the call's time axis. */
export interface TurnMark {
  offsetMs: number;
  totalMs: number;
  endpointingMs: number;
  modelMs: number;
  playoutMs: number;
}

/** One barge-in: where on the call, how fast the agent stopped (`null`: not measured), how much was heard. */
export interface BargeMark {
  offsetMs: number;
  reactionMs: number | null;
  heardMs: number;
}

export interface BudgetWarning {
  scope: 'call' | 'day';
  spentUsd: number;
  capUsd: number;
  atMs: number;
}

export interface CallInsight {
  /** The call's cost so far (`null`: nothing priced yet). */
  costUsd: number | null;
  bySource: Record<CostSource, number>;
  /** False once something on the call had no price (`unpricedModels` says which). */
  priced: boolean;
  unpricedModels: string[];
  /** The latest budget warning (the agent was told to wrap up). */
  warning: BudgetWarning | null;
  /** A budget ended (or refused) the call. */
  capped: { cap: CallCap; message: string } | null;
  turns: TurnMark[];
  bargeIns: BargeMark[];
  /** Barge-ins as the core counted them (may exceed `bargeIns` when some were not listed). */
  interruptions: number;
  summary: SummaryRecord | null;
}

export type InsightState = Readonly<Record<string, CallInsight>>;

export function emptyInsight(): CallInsight {
  return {
    costUsd: null,
    bySource: { response: 0, transcription: 0, summary: 0 },
    priced: true,
    unpricedModels: [],
    warning: null,
    capped: null,
    turns: [],
    bargeIns: [],
    interruptions: 0,
    summary: null,
  };
}

/** The caps that are about money (`call_capped`'s new `cap` values). */
export function isBudgetCap(cap: string): cap is 'call_budget' | 'daily_budget' {
  return cap === 'call_budget' || cap === 'daily_budget';
}

const finite = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function turnKey(t: TurnMark): string {
  return `${t.offsetMs}|${t.totalMs}`;
}

function bargeKey(b: BargeMark): string {
  return `${b.heardMs}|${b.reactionMs ?? '-'}`;
}

/** `turns` plus those of `more` not already there, ordered by offset. */
function unionTurns(turns: readonly TurnMark[], more: readonly TurnMark[]): TurnMark[] {
  const seen = new Set(turns.map(turnKey));
  const out = [...turns, ...more.filter((t) => !seen.has(turnKey(t)))];
  return out.sort((a, b) => a.offsetMs - b.offsetMs);
}

function unionBargeIns(list: readonly BargeMark[], more: readonly BargeMark[]): BargeMark[] {
  const seen = new Set(list.map(bargeKey));
  const out = [...list, ...more.filter((b) => !seen.has(bargeKey(b)))];
  return out.sort((a, b) => a.offsetMs - b.offsetMs);
}

export function turnMark(t: Omit<TurnLatencyRecord, 'at_ms'>): TurnMark {
  return {
    offsetMs: finite(t.offset_ms),
    totalMs: finite(t.total_ms),
    endpointingMs: finite(t.endpointing_ms),
    modelMs: finite(t.model_ms),
    playoutMs: finite(t.playout_ms),
  };
}

export function bargeMark(b: BargeInRecord): BargeMark {
  return { offsetMs: finite(b.offset_ms), reactionMs: b.reaction_ms ?? null, heardMs: finite(b.heard_ms) };
}

/**
 * Applies one event to the call's insight. `callStartMs` (the call's start, wall clock) places a live barge-in
 * on the call's time axis (its event carries no offset). Events of other types return `state` itself.
 */
export function applyInsightEvent(state: InsightState, event: CallEvent, callStartMs?: number): InsightState {
  const sid = event.call_sid;
  const was = state[sid] ?? emptyInsight();
  let next: CallInsight;
  switch (event.type) {
    case 'cost': {
      const bySource = { ...was.bySource };
      if (event.source in bySource) bySource[event.source] += finite(event.cost_usd);
      const unpriced = !event.priced && event.model && !was.unpricedModels.includes(event.model);
      next = {
        ...was,
        costUsd: Math.max(was.costUsd ?? 0, finite(event.call_total_usd)),
        bySource,
        priced: was.priced && event.priced,
        unpricedModels: unpriced ? [...was.unpricedModels, event.model] : was.unpricedModels,
      };
      break;
    }
    case 'budget_warning':
      next = {
        ...was,
        warning: { scope: event.scope, spentUsd: finite(event.spent_usd), capUsd: finite(event.cap_usd), atMs: event.at_ms },
      };
      break;
    case 'call_capped':
      if (!isBudgetCap(event.cap)) return state;
      next = { ...was, capped: { cap: event.cap, message: event.message } };
      break;
    case 'turn_latency':
      next = { ...was, turns: unionTurns(was.turns, [turnMark(event)]) };
      break;
    case 'barge_in': {
      const offsetMs = callStartMs === undefined ? 0 : Math.max(0, event.at_ms - callStartMs);
      const mark: BargeMark = { offsetMs, reactionMs: event.reaction_ms ?? null, heardMs: finite(event.heard_ms) };
      next = { ...was, bargeIns: unionBargeIns(was.bargeIns, [mark]), interruptions: was.interruptions + 1 };
      break;
    }
    case 'summary':
      next = {
        ...was,
        summary: {
          call_sid: sid,
          status: event.status,
          summary: event.summary,
          disposition: event.disposition,
          fields: event.fields,
          error: event.error,
          model: null,
          input_tokens: null,
          cached_tokens: null,
          output_tokens: null,
          latency_ms: null,
          at_ms: event.at_ms,
        },
      };
      break;
    default:
      return state;
  }
  return { ...state, [sid]: next };
}

/** Drops the insight of calls no longer kept (`keep`: the call SIDs the calls state still has). */
export function pruneInsights(state: InsightState, keep: Readonly<Record<string, unknown>>): InsightState {
  const sids = Object.keys(state);
  if (sids.every((sid) => sid in keep)) return state;
  return Object.fromEntries(Object.entries(state).filter(([sid]) => sid in keep));
}

/**
 * A call's insight with what the core stored merged in (fetched when a call is shown, or in the library): the
 * turns and barge-ins of both, and the higher of each running total (they only grow, so the higher is the newer).
 */
export function withStored(
  live: CallInsight | null | undefined,
  latency: CallLatency | null,
  cost: CallCost | null,
): CallInsight {
  let out = live ?? emptyInsight();
  if (latency) {
    const turns = unionTurns(out.turns, (latency.turns ?? []).map(turnMark));
    const stored = (latency.barge_ins ?? []).map(bargeMark);
    // A live barge-in's offset is estimated from the wall clock: the stored one (on the stream) wins.
    const bargeIns = stored.length >= out.bargeIns.length ? unionBargeIns(stored, out.bargeIns) : unionBargeIns(out.bargeIns, stored);
    out = { ...out, turns, bargeIns, interruptions: Math.max(out.interruptions, finite(latency.interruptions), bargeIns.length) };
  }
  if (cost) {
    const by = cost.by_source ?? { response: 0, transcription: 0, summary: 0 };
    const unpriced = [...out.unpricedModels, ...(cost.unpriced_models ?? []).filter((m) => !out.unpricedModels.includes(m))];
    out = {
      ...out,
      costUsd: Math.max(out.costUsd ?? 0, finite(cost.total_usd)),
      bySource: {
        response: Math.max(out.bySource.response, finite(by.response)),
        transcription: Math.max(out.bySource.transcription, finite(by.transcription)),
        summary: Math.max(out.bySource.summary, finite(by.summary)),
      },
      priced: out.priced && cost.priced,
      unpricedModels: unpriced,
    };
  }
  return out;
}

/** The `p`th percentile (nearest rank, as the core computes it); `null` for no values. */
export function percentile(values: readonly number[], p: number): number | null {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1] ?? null;
}

export interface LatencyStats {
  count: number;
  last: TurnMark | null;
  p50: number | null;
  p95: number | null;
  max: number | null;
}

/** The figures of a call's turns: the last one (by offset), p50, p95, max. */
export function latencyStats(turns: readonly TurnMark[]): LatencyStats {
  const totals = turns.map((t) => t.totalMs);
  return {
    count: turns.length,
    last: turns.reduce<TurnMark | null>((a, t) => (a === null || t.offsetMs >= a.offsetMs ? t : a), null),
    p50: percentile(totals, 50),
    p95: percentile(totals, 95),
    max: totals.length > 0 ? Math.max(...totals) : null,
  };
}

/** The latest barge-in whose reaction was measured. */
export function lastReaction(bargeIns: readonly BargeMark[]): number | null {
  for (let i = bargeIns.length - 1; i >= 0; i--) {
    const r = bargeIns[i]?.reactionMs;
    if (r !== null && r !== undefined) return r;
  }
  return null;
}

/** US dollars: four decimals below ten cents ("$0.0042"), cents above ("$0.42", "$1,234.50"). */
export function formatUsd(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) return '—';
  const v = Math.max(0, usd);
  if (v === 0) return '$0.00';
  return v < 0.1 ? `$${v.toFixed(4)}` : `$${v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** Milliseconds as people read them: "640 ms" below a second, "1.24 s" above. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const v = Math.max(0, Math.round(ms));
  return v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(2)} s`;
}

/** What the meter says about pricing: `null` when everything was priced. */
export function pricingNote(insight: Pick<CallInsight, 'priced' | 'unpricedModels'>): string | null {
  if (insight.priced) return null;
  return insight.unpricedModels.length > 0 ? `price unknown for ${insight.unpricedModels.join(', ')}` : 'price unknown for a model';
}

export type BudgetLevel = 'none' | 'ok' | 'near' | 'over';

/** How much of the call's cap is spent (0–1) and whether that is near (at `wrapUpPercent`) or at the cap. */
export function budgetShare(
  costUsd: number | null,
  capUsd: number | null | undefined,
  wrapUpPercent = 80,
): { share: number; level: BudgetLevel } {
  if (capUsd === null || capUsd === undefined || !(capUsd > 0)) return { share: 0, level: 'none' };
  const share = Math.min(Math.max(finite(costUsd) / capUsd, 0), 1);
  if (finite(costUsd) >= capUsd) return { share, level: 'over' };
  return { share, level: share * 100 >= wrapUpPercent ? 'near' : 'ok' };
}

/** The warning line for a `budget_warning`. */
export function warningText(w: BudgetWarning): string {
  const what = w.scope === 'call' ? "this call's budget" : "today's budget";
  return `Near ${what}: ${formatUsd(w.spentUsd)} of ${formatUsd(w.capUsd)} spent; the agent was asked to wrap up.`;
}

/** The line for a call ended or refused by a budget. */
export function cappedText(c: { cap: CallCap; message: string }): string {
  const what = c.cap === 'daily_budget' ? "Today's budget is spent" : "The call's budget is spent";
  return c.message ? `${what}: ${c.message}` : what;
}

/** The cost of one source, for the breakdown. */
export const SOURCE_LABELS: Readonly<Record<CostSource, string>> = {
  response: 'Agent responses',
  transcription: 'Caller transcription',
  summary: 'Post-call summary',
};
