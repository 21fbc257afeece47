// Small, pure formatting helpers for the call views.

/** `65_000` → `"1:05"`, `3_723_000` → `"1:02:03"`. Negative or non-finite values read as zero. */
export function formatDuration(ms: number): string {
  const total = Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const ss = String(seconds).padStart(2, '0');
  if (hours > 0) {
    return `${hours}:${String(minutes).padStart(2, '0')}:${ss}`;
  }
  return `${minutes}:${ss}`;
}

/** A local wall-clock time such as `14:05:09`. */
export function formatClock(atMs: number, locale?: string): string {
  return new Date(atMs).toLocaleTimeString(locale, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/**
 * How a call party reads in the UI: Twilio sends E.164 numbers (`+14155550100`), `client:alice` for
 * Voice SDK clients and `sip:…` URIs; missing or anonymous callers read as "Unknown".
 */
export function formatParty(party: string | null | undefined): string {
  const value = (party ?? '').trim();
  if (value === '' || /^(anonymous|restricted|unknown)$/i.test(value)) {
    return 'Unknown';
  }
  if (value.startsWith('client:')) {
    return value.slice('client:'.length) || 'Unknown';
  }
  const nanp = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(value);
  if (nanp) {
    return `+1 (${nanp[1]}) ${nanp[2]}-${nanp[3]}`;
  }
  return value;
}

/**
 * An error as both doors of the core send it: a Tauri command rejects with `{code, message}`, `/api`
 * answers `{error: {code, message}}`. `code` is stable (`not_found`, `invalid_value`, …); `message` is
 * for people.
 */
export interface ErrorBody {
  code: string;
  message: string;
}

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const { code, message } = value as Record<string, unknown>;
  return typeof code === 'string' && typeof message === 'string';
}

/** The `{code, message}` in a rejected `invoke` or an `/api` error body; `null` for anything else. */
export function errorBody(error: unknown): ErrorBody | null {
  if (isErrorBody(error)) {
    return { code: error.code, message: error.message };
  }
  if (typeof error === 'object' && error !== null && 'error' in error) {
    const inner = (error as { error: unknown }).error;
    if (isErrorBody(inner)) {
      return { code: inner.code, message: inner.message };
    }
  }
  return null;
}

/** The stable code of an error from either door, or `null` (a plain string from Tauri itself, an exception). */
export function errorCode(error: unknown): string | null {
  return errorBody(error)?.code ?? null;
}

/** The text of whatever a rejected `invoke`, an `/api` error body or a thrown value carried. */
export function errorMessage(error: unknown): string {
  if (typeof error === 'string') {
    return error;
  }
  const body = errorBody(error);
  if (body) {
    return body.message;
  }
  if (error instanceof Error) {
    return error.message;
  }
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

/**
 * Who a transcript line is from, as the window labels it. The operator is "You" on a live call (the person
 * at the desk) and "Operator" in the library, where someone else may read it; a whisper is private.
 */
export function speakerLabel(speaker: string, where: 'live' | 'library' = 'live'): string {
  switch (speaker) {
    case 'agent':
      return 'Agent';
    case 'operator':
      return where === 'live' ? 'You' : 'Operator';
    case 'whisper':
      return where === 'live' ? 'Whisper (only you see this)' : 'Whisper to the agent (private)';
    case 'tool':
      return 'Tool';
    default:
      return 'Caller';
  }
}
