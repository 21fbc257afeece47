import { describe, expect, it } from 'vitest';
import { MIN_API_KEY_CHARS, apiKeyProblem } from './keys';

describe('apiKeyProblem', () => {
  it('refuses short or unprintable keys without quoting them', () => {
    const short = apiKeyProblem('hunter2');
    expect(short).toContain('too weak');
    expect(short).toContain(`at least ${MIN_API_KEY_CHARS}`);
    expect(short).not.toContain('hunter2');
    expect(apiKeyProblem('a key with spaces that is long enough to pass')).toContain('printable ASCII');
  });

  it('accepts a generated key', () => {
    expect(apiKeyProblem('Zm9vYmFyLXJhbmRvbS1rZXktZm9yLXRlc3RzLTAwMDE')).toBeNull();
    expect(apiKeyProblem('  Zm9vYmFyLXJhbmRvbS1rZXktZm9yLXRlc3RzLTAwMDE  ')).toBeNull();
  });
});
