import { describe, expect, it } from 'vitest';
import type { CoreState } from './core';
import { firstTab, readiness, setupFacts } from './readiness';
import type { AppStatus, SecretKind, SecretStatus } from './types';

const running = (publicUrl: string | null): CoreState => ({
  phase: 'running',
  status: {
    local_url: 'http://127.0.0.1:8081',
    api_url: 'http://127.0.0.1:8082',
    public_url: publicUrl,
    stream_url: publicUrl ? `${publicUrl.replace('https', 'wss')}/media` : null,
    model: 'gpt-realtime',
    active_calls: 0,
  } satisfies AppStatus,
});

const status = (kind: SecretKind, source: SecretStatus['source']): SecretStatus => ({
  kind,
  label: kind,
  env_var: kind.toUpperCase(),
  source,
  masked: source === 'missing' ? null : 'sk-…abcd',
});

const keys = (openai: SecretStatus['source'], twilio: SecretStatus['source']) => [
  status('openai_api_key', openai),
  status('twilio_auth_token', twilio),
  status('ngrok_authtoken', 'missing'),
];

describe('readiness', () => {
  it('never says "Ready for calls" for a new user: the OpenAI key comes first', () => {
    const r = readiness(running(null), setupFacts(keys('missing', 'missing'), 'none'));
    expect(r).toEqual({ tone: 'missing', text: 'Not ready: add an OpenAI key in Setup', toSetup: true });
  });

  it('then the public URL, then the Twilio token', () => {
    expect(readiness(running(null), setupFacts(keys('keychain', 'missing'), 'none')).text).toBe(
      'No public URL: set one or turn on the tunnel in Setup',
    );
    expect(readiness(running(null), setupFacts(keys('env', 'keychain'), 'ngrok')).text).toMatch(/ngrok tunnel did not open/);
    expect(readiness(running('https://a.example'), setupFacts(keys('keychain', 'missing'), 'none')).text).toBe(
      'Not ready: add the Twilio auth token in Setup',
    );
  });

  it('is ready when everything is there', () => {
    expect(readiness(running('https://a.example'), setupFacts(keys('keychain', 'env'), 'none'))).toEqual({
      tone: 'ready',
      text: 'Ready for calls',
      toSetup: false,
    });
  });

  it('names a keychain that fails or does not answer', () => {
    expect(readiness(running(null), setupFacts('unreachable', null)).text).toMatch(/keychain is unreachable — see Setup/);
    expect(readiness(running(null), setupFacts('no_answer', null)).text).toMatch(/does not answer/);
  });

  it('says what the call bridge is doing, and never mentions VERBIO_PUBLIC_URL', () => {
    expect(readiness({ phase: 'starting' }, null).tone).toBe('starting');
    expect(readiness({ phase: 'failed', error: 'x' }, null)).toEqual({ tone: 'failed', text: 'Call bridge not running', toSetup: false });
    // Before the keys are known only the public URL can be judged.
    expect(readiness(running(null), null).text).toMatch(/No public URL/);
    for (const facts of [null, setupFacts(keys('missing', 'missing'), 'none')]) {
      expect(readiness(running(null), facts).text).not.toMatch(/VERBIO_/);
    }
  });
});

describe('firstTab', () => {
  it('opens on Setup on a first run, without a reachable keychain, or without a call bridge', () => {
    expect(firstTab(running(null), setupFacts(keys('missing', 'missing'), 'none'))).toBe('setup');
    expect(firstTab(running(null), setupFacts('unreachable', null))).toBe('setup');
    expect(firstTab(running(null), setupFacts('no_answer', null))).toBe('setup');
    expect(firstTab({ phase: 'failed', error: 'cannot bind' }, setupFacts(keys('env', 'env'), null))).toBe('setup');
  });

  it('opens on Calls once an OpenAI key is there', () => {
    expect(firstTab(running(null), setupFacts(keys('keychain', 'missing'), 'none'))).toBe('calls');
    expect(firstTab(running('https://a.example'), setupFacts(keys('env', 'env'), 'none'))).toBe('calls');
  });
});
