// The local API key's rules as the window checks them before asking the core (which checks them again:
// `verbio::config::kinds::api_key_problem`, the one owner of the rule).

/** A generated key is 32 random bytes (43 characters); a typed one needs at least this many characters. */
export const MIN_API_KEY_CHARS = 32;

/** Why `value` cannot be the local API key, or `null`. Never repeats the key. */
export function apiKeyProblem(value: string): string | null {
  const key = value.trim();
  if (!/^[\x21-\x7e]*$/.test(key)) {
    return 'The local API key must be printable ASCII without spaces (it travels in the X-API-Key header).';
  }
  if (key.length < MIN_API_KEY_CHARS) {
    return `The local API key is too weak: ${key.length} characters, at least ${MIN_API_KEY_CHARS} are needed. Generate one instead.`;
  }
  return null;
}
