"""Tiny X11 helper for the shell tests: find the window titled NAME, report whether it is shown, or ask
it to close the way a window manager's close button does (a WM_DELETE_WINDOW client message).

    python3 window_tool.py state Verbio    → prints shown | hidden | absent
    python3 window_tool.py close Verbio    → sends WM_DELETE_WINDOW (exit 1 if there is no such window)
"""

import sys

from Xlib import X, display
from Xlib.protocol import event


def find(d, name):
    found = []

    def walk(w):
        try:
            if w.get_wm_name() == name:
                found.append(w)
            for child in w.query_tree().children:
                walk(child)
        except Exception:  # noqa: BLE001 - windows come and go while we walk
            pass

    walk(d.screen().root)
    return found


def main() -> int:
    command, name = sys.argv[1], sys.argv[2]
    d = display.Display()
    windows = find(d, name)
    if command == "state":
        if not windows:
            print("absent")
        else:
            shown = any(w.get_attributes().map_state == X.IsViewable for w in windows)
            print("shown" if shown else "hidden")
        return 0
    if command == "close":
        if not windows:
            return 1
        protocols = d.intern_atom("WM_PROTOCOLS")
        delete = d.intern_atom("WM_DELETE_WINDOW")
        for w in windows:
            msg = event.ClientMessage(window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
            w.send_event(msg, event_mask=X.NoEventMask)
        d.flush()
        return 0
    print(f"unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
