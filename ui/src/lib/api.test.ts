import { beforeEach, describe, expect, it, vi } from 'vitest';

const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args), isTauri: () => true }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn() }));

const api = await import('./api');

// The argument keys must be the camelCase forms of `call_commands.rs`'s Rust parameter names.
describe('command arguments', () => {
  beforeEach(() => {
    invoke.mockReset();
    invoke.mockResolvedValue(null);
  });

  it('matches the outbound and webhook commands', async () => {
    await api.placeCall({ to: '+15551112222', from: '+15550000000' });
    expect(invoke).toHaveBeenLastCalledWith('place_call', { request: { to: '+15551112222', from: '+15550000000' } });
    invoke.mockResolvedValueOnce('+15553334444');
    await expect(api.transferCall('CA1')).resolves.toBe('+15553334444');
    expect(invoke).toHaveBeenLastCalledWith('transfer_call', { callSid: 'CA1', to: null });
    await api.chooseWebhookMode(true, 'PN1');
    expect(invoke).toHaveBeenLastCalledWith('choose_webhook_mode', { auto: true, numberSid: 'PN1' });
  });

  it('matches the key commands', async () => {
    await api.generateApiKey();
    expect(invoke).toHaveBeenLastCalledWith('generate_api_key');
    await api.setSecret('local_api_key', 'k');
    expect(invoke).toHaveBeenLastCalledWith('set_secret', { kind: 'local_api_key', value: 'k' });
  });

  it('matches the recordings, playback and listen-in commands', async () => {
    invoke.mockResolvedValueOnce([]);
    await expect(api.recordings(null, 50, 100)).resolves.toEqual([]);
    expect(invoke).toHaveBeenLastCalledWith('recordings', { q: null, limit: 50, offset: 100 });
    await api.recordingPeaks(7, 240);
    expect(invoke).toHaveBeenLastCalledWith('recording_peaks', { id: 7, buckets: 240 });
    await api.deleteRecording(7, false);
    expect(invoke).toHaveBeenLastCalledWith('delete_recording', { id: 7, deleteTwilio: false });
    await api.playbackPlay(7, 'caller');
    expect(invoke).toHaveBeenLastCalledWith('playback_play', { id: 7, channel: 'caller', device: null });
    await api.playbackPause(true);
    expect(invoke).toHaveBeenLastCalledWith('playback_pause', { paused: true });
    await api.playbackSeek(1234.6);
    expect(invoke).toHaveBeenLastCalledWith('playback_seek', { positionMs: 1235 });
    await api.listenIn('CA1');
    expect(invoke).toHaveBeenLastCalledWith('listen_in', { callSid: 'CA1', device: null });
    await api.listenMute('agent', true);
    expect(invoke).toHaveBeenLastCalledWith('listen_mute', { side: 'agent', muted: true });
    await api.listenStop();
    expect(invoke).toHaveBeenLastCalledWith('listen_stop');
  });

  it('matches the cost, latency, budget and summary commands', async () => {
    await api.callLatency('CA1');
    expect(invoke).toHaveBeenLastCalledWith('call_latency', { callSid: 'CA1' });
    await api.callCost('CA1');
    expect(invoke).toHaveBeenLastCalledWith('call_cost', { callSid: 'CA1' });
    await api.dailyStats(14);
    expect(invoke).toHaveBeenLastCalledWith('daily_stats', { days: 14 });
    await api.getPrices();
    expect(invoke).toHaveBeenLastCalledWith('get_prices');
    const table = { as_of: '2026-11-01', source: 'openai.com/pricing', currency: 'USD' as const, models: {} };
    await api.setPrices(table);
    expect(invoke).toHaveBeenLastCalledWith('set_prices', { table });
    await api.getBudget();
    expect(invoke).toHaveBeenLastCalledWith('get_budget');
    const budget = { call_usd: 0.5, daily_usd: null, wrap_up_percent: 80, goodbye: 'Bye', spent_today_usd: 0 };
    await api.setBudget(budget);
    expect(invoke).toHaveBeenLastCalledWith('set_budget', { budget });
    await api.callSummary('CA1');
    expect(invoke).toHaveBeenLastCalledWith('call_summary', { callSid: 'CA1' });
    await api.rerunSummary('CA1');
    expect(invoke).toHaveBeenLastCalledWith('rerun_summary', { callSid: 'CA1' });
  });
});

describe('command errors', () => {
  beforeEach(() => invoke.mockReset());

  it('reach the caller as {code, message}', async () => {
    const { errorCode, errorMessage } = await import('./format');
    invoke.mockRejectedValueOnce({ code: 'not_found', message: 'no call CA1' });
    const error: unknown = await api.hangUp('CA1').then(
      () => null,
      (e: unknown) => e,
    );
    expect(errorCode(error)).toBe('not_found');
    expect(errorMessage(error)).toBe('no call CA1');
    expect(api.isMissingCommand(error)).toBe(false);
  });

  it('tell a missing command (a string from Tauri) from a failed one', () => {
    expect(api.isMissingCommand('command listen_in not found')).toBe(true);
    expect(api.isMissingCommand({ code: 'invalid_value', message: 'not allowed here' })).toBe(false);
    expect(api.isMissingCommand('invalid args `callSid` for command `hang_up`')).toBe(false);
  });
});
