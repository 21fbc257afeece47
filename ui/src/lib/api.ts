// The only module that talks to the Rust side: three commands and two events.
// Commands are `verbio::desktop::commands::*`; each rejects with a plain error string.

import { invoke, isTauri } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { ActiveCall, AppStatus, CallEvent } from './types';

/** Every `CallEvent` of the core, forwarded as it happens. */
export const CALL_EVENT = 'call-event';
/** The forwarder fell behind and dropped this many events; re-sync with `activeCalls()`. */
export const CALL_EVENTS_SKIPPED = 'call-events-skipped';

export { isTauri };

/** Resolves once the core has started; rejects with the reason it could not. */
export function appStatus(): Promise<AppStatus> {
  return invoke<AppStatus>('app_status');
}

export function activeCalls(): Promise<ActiveCall[]> {
  return invoke<ActiveCall[]>('active_calls');
}

export async function hangUp(callSid: string): Promise<void> {
  await invoke('hang_up', { callSid });
}

export function onCallEvent(handler: (event: CallEvent) => void): Promise<UnlistenFn> {
  return listen<CallEvent>(CALL_EVENT, (e) => handler(e.payload));
}

export function onEventsSkipped(handler: (skipped: number) => void): Promise<UnlistenFn> {
  return listen<number>(CALL_EVENTS_SKIPPED, (e) => handler(e.payload));
}

/** Where Twilio's voice webhook must point, below the public URL (`verbio::server`'s TwiML route). */
export const TWIML_PATH = '/twiml';
