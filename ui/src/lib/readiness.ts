// What the status pill says, and which tab the window opens on. A new user with no keys must read what is
// missing and where to fix it (Setup), most blocking first, never "Ready for calls".

import type { CoreState } from './core';
import type { SecretKind, SecretStatus, TunnelChoice } from './types';
import type { TabId } from './tabs';

/** What the window knows of the setup: the keychain's answer and the tunnel choice. */
export interface SetupFacts {
  /** `unreachable`: the keychain failed; `no_answer`: it has not answered yet (it may wait for an unlock). */
  keychain: 'ok' | 'unreachable' | 'no_answer';
  /** Where each secret is set; empty unless the keychain answered. */
  secrets: Partial<Record<SecretKind, SecretStatus['source']>>;
  tunnel: TunnelChoice | null;
}

export function setupFacts(
  secrets: readonly SecretStatus[] | 'unreachable' | 'no_answer',
  tunnel: TunnelChoice | null,
): SetupFacts {
  if (typeof secrets === 'string') return { keychain: secrets, secrets: {}, tunnel };
  return { keychain: 'ok', secrets: Object.fromEntries(secrets.map((s) => [s.kind, s.source])), tunnel };
}

export interface Readiness {
  /** `ready` (green), `missing` (something to fix in Setup), `starting`, `failed`. */
  tone: 'ready' | 'missing' | 'starting' | 'failed';
  text: string;
  /** Clicking the pill goes to Setup. */
  toSetup: boolean;
}

const missing = (text: string): Readiness => ({ tone: 'missing', text, toSetup: true });

/** The pill's words, in priority order: the core, the OpenAI key, the public URL, the Twilio token. */
export function readiness(core: CoreState, facts: SetupFacts | null): Readiness {
  if (core.phase === 'starting') return { tone: 'starting', text: 'Starting the call bridge…', toSetup: false };
  if (core.phase === 'failed') return { tone: 'failed', text: 'Call bridge not running', toSetup: false };
  if (facts?.keychain === 'unreachable') return missing('Not ready: the system keychain is unreachable — see Setup');
  if (facts?.keychain === 'no_answer') return missing('Not ready: the system keychain does not answer — see Setup');
  if (facts?.secrets.openai_api_key === 'missing') return missing('Not ready: add an OpenAI key in Setup');
  if (!core.status.public_url) {
    return missing(
      facts?.tunnel === 'ngrok'
        ? 'No public URL: the ngrok tunnel did not open — check it in Setup'
        : 'No public URL: set one or turn on the tunnel in Setup',
    );
  }
  if (facts?.secrets.twilio_auth_token === 'missing') return missing('Not ready: add the Twilio auth token in Setup');
  return { tone: 'ready', text: 'Ready for calls', toSetup: false };
}

/**
 * The tab the window opens on: Setup when the call bridge did not start or no OpenAI key can be known (none
 * stored, or a keychain that fails or does not answer); Calls otherwise.
 */
export function firstTab(core: CoreState, facts: SetupFacts): TabId {
  if (core.phase !== 'running') return 'setup';
  if (facts.keychain !== 'ok' || facts.secrets.openai_api_key !== 'env' && facts.secrets.openai_api_key !== 'keychain') {
    return 'setup';
  }
  return 'calls';
}
