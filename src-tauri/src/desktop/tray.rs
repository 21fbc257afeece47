//! The system-tray icon: live call count in the tooltip and menu, show/hide, per call "Take over" (or
//! "Hand back" while the operator holds it) and a quick hang-up, and Quit (which asks the window to confirm
//! when calls are live).

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
const TAKE_OVER_PREFIX: &str = "takeover:";
const HAND_BACK_PREFIX: &str = "handback:";
/// Tauri event asking the window to show a call (`{call_sid, take_over}`: focus its take-over button).
pub const SHOW_CALL: &str = "show-call";

/// What the tray (or a notification) does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallAction {
    TakeOver,
    HandBack,
    HangUp,
}

/// The menu items of one live call: take over (hand back while the operator holds it), then hang up.
pub fn call_items(call_sid: &str, from: Option<&str>, held: Option<&str>) -> Vec<(String, String)> {
    let who = party_label(call_sid, from);
    let first = if held == Some(call_sid) {
        (
            format!("{HAND_BACK_PREFIX}{call_sid}"),
            format!("Hand back {who} to the agent"),
        )
    } else {
        (
            format!("{TAKE_OVER_PREFIX}{call_sid}"),
            format!("Take over {who}"),
        )
    };
    vec![
        first,
        (
            format!("{HANG_UP_PREFIX}{call_sid}"),
            hang_up_label(call_sid, from),
        ),
    ]
}

/// Which call action a menu item id asks for, and for which call.
pub fn parse_call_action(id: &str) -> Option<(CallAction, &str)> {
    [
        (TAKE_OVER_PREFIX, CallAction::TakeOver),
        (HAND_BACK_PREFIX, CallAction::HandBack),
        (HANG_UP_PREFIX, CallAction::HangUp),
    ]
    .into_iter()
    .find_map(|(prefix, action)| id.strip_prefix(prefix).map(|sid| (action, sid)))
    .filter(|(_, sid)| !sid.is_empty())
}

/// `"Verbio: no active calls"`, `"Verbio: 1 active call"`, `"Verbio: 3 active calls"`.
pub fn tooltip(count: usize) -> String {
    match count {
        0 => "Verbio: no active calls".into(),
        1 => "Verbio: 1 active call".into(),
        n => format!("Verbio: {n} active calls"),
    }
}

/// A call as the menu names it: the other party, else the start of its SID.
fn party_label(call_sid: &str, from: Option<&str>) -> String {
    match from {
        Some(from) if !from.is_empty() => from.to_string(),
        _ => format!("{}…", &call_sid[..call_sid.len().min(10)]),
    }
}

/// The menu label of a call's hang-up item.
pub fn hang_up_label(call_sid: &str, from: Option<&str>) -> String {
    format!("Hang up {}", party_label(call_sid, from))
}

/// The live calls, each with its other party, and the call the operator holds (if any).
pub struct TrayCalls<'a> {
    pub live: &'a [(String, Option<String>)],
    pub held: Option<&'a str>,
}

fn menu(app: &AppHandle, calls: &TrayCalls) -> tauri::Result<Menu<Wry>> {
    let live = calls.live;
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
            for (id, label) in call_items(sid, from.as_deref(), calls.held) {
                menu.append(&MenuItem::with_id(app, id, label, true, None::<&str>)?)?;
            }
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
        .menu(&menu(
            app,
            &TrayCalls {
                live: &[],
                held: None,
            },
        )?)
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

/// Updates the tooltip and the menu's call list; the held call is asked of the core
/// ([`OperatorDesk::state`](crate::services::operator::OperatorDesk::state)).
pub fn refresh(app: &AppHandle, live: &[(String, Option<String>)]) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let held = app
        .state::<Core>()
        .current()
        .and_then(|services| services.operator.state())
        .map(|state| state.call_sid);
    let calls = TrayCalls {
        live,
        held: held.as_deref(),
    };
    let result = menu(app, &calls).and_then(|m| {
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
            if let Some((action, sid)) = parse_call_action(other) {
                act_on_call(app, sid, action);
            }
        }
    }
}

/// Runs a call action from the tray or a notification through the core, the window's way
/// (`services.operator`, `Services::end_call`). Taking over shows the call in the window; a failure (no
/// microphone, another call held) is an alert, and the agent keeps the call.
pub fn act_on_call(app: &AppHandle, call_sid: &str, action: CallAction) {
    let app = app.clone();
    let sid = call_sid.to_string();
    tauri::async_runtime::spawn(async move {
        let services = match app.state::<Core>().services().await {
            Ok(services) => services,
            Err(e) => {
                warn!(error = %e, ?action, "tray call action: the core is not running");
                return;
            }
        };
        let result = match action {
            CallAction::TakeOver => services.operator.take_over(&sid, None).await.map(|_| ()),
            CallAction::HandBack => services.operator.hand_back(&sid).await,
            CallAction::HangUp => services.end_call(&sid).await,
        };
        match result {
            Ok(()) if action == CallAction::TakeOver => show_call(&app, &sid, false),
            Ok(()) => {}
            Err(e) => {
                warn!(error = %e, ?action, "a call action from the tray or a notification failed");
                let alert = super::alerts::call_action_failed(&sid, action, &e.body());
                app.state::<super::Desktop>().notifier.deliver(&app, alert);
            }
        }
        // The menu offers "Hand back" for the held call, "Take over" again once it is handed back.
        let live = app.state::<super::Desktop>().live_calls();
        refresh(&app, &live);
    });
}

/// Shows the window on `call_sid`; with `take_over`, its take-over button has the focus.
pub fn show_call(app: &AppHandle, call_sid: &str, take_over: bool) {
    show_window(app);
    let payload = serde_json::json!({ "call_sid": call_sid, "take_over": take_over });
    if let Err(e) = app.emit(SHOW_CALL, payload) {
        warn!(error = %e, "cannot ask the window to show a call");
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

    #[test]
    fn a_live_call_offers_take_over_and_hand_back_while_held() {
        let labels = |held| -> Vec<String> {
            call_items("CA1", Some("+15551234567"), held)
                .into_iter()
                .map(|(_, label)| label)
                .collect()
        };
        assert_eq!(
            labels(None),
            ["Take over +15551234567", "Hang up +15551234567"]
        );
        assert_eq!(
            labels(Some("CA1")),
            [
                "Hand back +15551234567 to the agent",
                "Hang up +15551234567"
            ]
        );
        // Holding another call: this one still offers "Take over" (the core answers `operator_busy`).
        assert_eq!(labels(Some("CA2"))[0], "Take over +15551234567");
    }

    #[test]
    fn menu_ids_round_trip_to_call_actions() {
        for held in [None, Some("CA9")] {
            for (id, _) in call_items("CA9", None, held) {
                let (_, sid) = parse_call_action(&id).expect("a call action");
                assert_eq!(sid, "CA9");
            }
        }
        assert_eq!(
            parse_call_action("takeover:CA1"),
            Some((CallAction::TakeOver, "CA1"))
        );
        assert_eq!(
            parse_call_action("handback:CA1"),
            Some((CallAction::HandBack, "CA1"))
        );
        assert_eq!(
            parse_call_action("hangup:CA1"),
            Some((CallAction::HangUp, "CA1"))
        );
        assert_eq!(parse_call_action("takeover:"), None);
        assert_eq!(parse_call_action("show"), None);
    }
}
