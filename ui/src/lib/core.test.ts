import { describe, expect, it } from 'vitest';
import { startErrorHint } from './core';

describe('startErrorHint', () => {
  it('points at the port when it is taken', () => {
    expect(startErrorHint('cannot bind 127.0.0.1:8081: Address already in use (os error 98)')).toMatch(/VERBIO_PORT/);
    // The local API has its own port (8082 by default), named too.
    expect(startErrorHint('cannot bind 127.0.0.1:8082: Address already in use (os error 98)')).toMatch(/VERBIO_API_PORT/);
  });

  it('points at settings and the data folder', () => {
    expect(startErrorHint('invalid settings: invalid value for VERBIO_PUBLIC_URL: "ftp://x"')).toMatch(/setting/);
    expect(startErrorHint('cannot open the call library: disk I/O error')).toMatch(/VERBIO_DATA_DIR/);
  });

  it('falls back to the log', () => {
    expect(startErrorHint('something else')).toMatch(/VERBIO_LOG/);
  });
});
