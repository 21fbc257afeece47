import type { AppStatus } from './types';

/** What the header knows about the core: starting, running with its status, or not running and why. */
export type CoreState =
  | { phase: 'starting' }
  | { phase: 'running'; status: AppStatus }
  | { phase: 'failed'; error: string };

/** A hint to go with a start-up error, for the errors a user can fix. */
export function startErrorHint(error: string): string {
  if (/cannot bind|address (already )?in use|os error 98/i.test(error)) {
    return 'Another program is using the port. Quit it, or set VERBIO_PORT (Twilio\'s routes) or VERBIO_API_PORT (the local API) to a free port, then restart Verbio.';
  }
  if (/VERBIO_|config file|invalid value/i.test(error)) {
    return 'Fix the setting named above (environment variable or config.toml), then restart Verbio.';
  }
  if (/call library|sqlite|database/i.test(error)) {
    return 'Check that VERBIO_DATA_DIR points to a writable folder, then restart Verbio.';
  }
  return 'Check the settings and the log (VERBIO_LOG=debug), then restart Verbio.';
}
