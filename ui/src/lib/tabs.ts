// The window's sections and keyboard movement between their tabs (WAI-ARIA tabs pattern).

export type TabId = 'calls' | 'outbound' | 'recordings' | 'session' | 'setup';

export const TABS: readonly { id: TabId; label: string }[] = [
  { id: 'calls', label: 'Calls' },
  { id: 'outbound', label: 'Outbound' },
  { id: 'recordings', label: 'Recordings' },
  { id: 'session', label: 'Session' },
  { id: 'setup', label: 'Setup' },
];

/** The tab an arrow/Home/End key moves to from `current`, or `null` for other keys. Wraps around. */
export function nextTab(current: TabId, key: string): TabId | null {
  const i = TABS.findIndex((t) => t.id === current);
  const n = TABS.length;
  const at = (j: number): TabId => TABS[((j % n) + n) % n]?.id ?? current;
  switch (key) {
    case 'ArrowRight':
      return at(i + 1);
    case 'ArrowLeft':
      return at(i - 1);
    case 'Home':
      return at(0);
    case 'End':
      return at(n - 1);
    default:
      return null;
  }
}
