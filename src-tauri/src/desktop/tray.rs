//! The system-tray icon: live call count in the tooltip and menu, show/hide, a quick hang-up per
//! call, and Quit (which asks the window to confirm when calls are live).

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter, Manager, Wry};
use tracing::{info, warn};

use super::Core;

pub const TRAY_ID: &str = "verbio";
/// Tauri event asking the window to confirm quitting; the payload is the live call count.
pub const CONFIRM_QUIT: &str = "confirm-quit";

const SHOW: &str = "show";
const HIDE: &str = "hide";
const QUIT: &str = "quit";
const HANG_UP_PREFIX: &str = "hangup:";

/// `"Verbio: no active calls"`, `"Verbio: 1 active call"`, `"Verbio: 3 active calls"`.
pub fn tooltip(count: usize) -> String {
    match count {
        0 => "Verbio: no active calls".into(),
        1 => "Verbio: 1 active call".into(),
        n => format!("Verbio: {n} active calls"),
    }
}

/// The menu label of a call's hang-up item.
pub fn hang_up_label(call_sid: &str, from: Option<&str>) -> String {
    match from {
        Some(from) if !from.is_empty() => format!("Hang up {from}"),
        _ => format!("Hang up {}…", &call_sid[..call_sid.len().min(10)]),
    }
}

fn menu(app: &AppHandle, live: &[(String, Option<String>)]) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        "count",
        tooltip(live.len()),
        false,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        SHOW,
        "Show Verbio",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        HIDE,
        "Hide to tray",
        true,
        None::<&str>,
    )?)?;
    if !live.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
        for (sid, from) in live {
            menu.append(&MenuItem::with_id(
                app,
                format!("{HANG_UP_PREFIX}{sid}"),
                hang_up_label(sid, from.as_deref()),
                true,
                None::<&str>,
            )?)?;
        }
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        QUIT,
        "Quit Verbio…",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

/// Creates the tray icon. `Err` on systems without a tray (the app runs on without one).
pub fn build(app: &AppHandle) -> tauri::Result<TrayIcon> {
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip(tooltip(0))
        .menu(&menu(app, &[])?)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                toggle_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let tray = builder.build(app)?;
    info!("tray icon ready");
    Ok(tray)
}

/// Updates the tooltip and the menu's call list.
pub fn refresh(app: &AppHandle, live: &[(String, Option<String>)]) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let result = menu(app, live).and_then(|m| {
        tray.set_menu(Some(m))?;
        tray.set_tooltip(Some(tooltip(live.len())))
    });
    if let Err(e) = result {
        warn!(error = %e, "cannot update the tray menu");
    }
}

fn on_menu(app: &AppHandle, id: &str) {
    match id {
        SHOW => show_window(app),
        HIDE => hide_window(app),
        QUIT => request_quit(app),
        other => {
            if let Some(sid) = other.strip_prefix(HANG_UP_PREFIX) {
                let app = app.clone();
                let sid = sid.to_string();
                tauri::async_runtime::spawn(async move {
                    match app.state::<Core>().services().await {
                        Ok(services) => {
                            if let Err(e) = services.end_call(&sid).await {
                                warn!(error = %e, "tray hang-up failed");
                            }
                        }
                        Err(e) => warn!(error = %e, "tray hang-up: the core is not running"),
                    }
                });
            }
        }
    }
}

pub fn show_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

pub fn hide_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.hide();
    }
}

fn toggle_window(app: &AppHandle) {
    let visible = app
        .get_webview_window("main")
        .and_then(|w| w.is_visible().ok())
        .unwrap_or(false);
    if visible {
        hide_window(app);
    } else {
        show_window(app);
    }
}

/// What Quit does, given how many calls are live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitAction {
    /// Nothing to lose: exit now.
    Exit,
    /// Show the window and ask it to confirm (`confirm-quit` with the live call count).
    Confirm(usize),
}

pub fn quit_action(live: usize) -> QuitAction {
    match live {
        0 => QuitAction::Exit,
        n => QuitAction::Confirm(n),
    }
}

/// Quit, from the tray's menu, the window's Quit control (`request_quit` command) or closing the window
/// when there is no tray icon: quits at once when no call is live; otherwise shows the window and asks it
/// to confirm (the window then calls the `quit_app` command, which ends the calls cleanly).
pub fn request_quit(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let live = match app.state::<Core>().services().await {
            Ok(services) => services.active_calls().len(),
            Err(_) => 0,
        };
        let live = match quit_action(live) {
            QuitAction::Exit => {
                info!("quitting: no live calls");
                app.exit(0);
                return;
            }
            QuitAction::Confirm(live) => live,
        };
        show_window(&app);
        if let Err(e) = app.emit(CONFIRM_QUIT, live) {
            warn!(error = %e, "cannot ask the window to confirm quitting; quitting anyway");
            app.exit(0);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quit_confirms_only_with_live_calls() {
        assert_eq!(quit_action(0), QuitAction::Exit);
        assert_eq!(quit_action(1), QuitAction::Confirm(1));
        assert_eq!(quit_action(3), QuitAction::Confirm(3));
    }

    #[test]
    fn tooltip_and_labels() {
        assert_eq!(tooltip(0), "Verbio: no active calls");
        assert_eq!(tooltip(1), "Verbio: 1 active call");
        assert_eq!(tooltip(4), "Verbio: 4 active calls");
        assert_eq!(
            hang_up_label("CAabc", Some("+15551234567")),
            "Hang up +15551234567"
        );
        assert_eq!(
            hang_up_label("CA0123456789abcdef", None),
            "Hang up CA01234567…"
        );
    }
}
