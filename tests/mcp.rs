//! The MCP hub against the test MCP server (`verbio::sim::mcp_server`), over stdio (the `verbio
//! sim-mcp --stdio` process, as a user's server would run) and over streamable HTTP: tools, the
//! allow-list, calls and their failures, servers that crash or never start, reconfiguration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use verbio::sim::mcp_server;
use verbio::tools::mcp::{
    McpHub, McpServerConfig, McpServerStatus, McpState, McpTransport, RestartPolicy,
};
use verbio::tools::FailureKind;

const ALL_TOOLS: [&str; 5] = ["lookup_order", "slow", "fail", "crash", "huge"];

fn stdio(name: &str, allowed: &[&str], env: &[(&str, &str)]) -> McpServerConfig {
    McpServerConfig {
        name: name.into(),
        transport: McpTransport::Stdio {
            command: env!("CARGO_BIN_EXE_verbio").into(),
            args: vec!["sim-mcp".into(), "--stdio".into()],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        },
        allowed_tools: allowed.iter().map(|t| t.to_string()).collect(),
        needs_approval: vec![],
        timeout_ms: 5000,
    }
}

fn http(name: &str, url: &str, allowed: &[&str]) -> McpServerConfig {
    McpServerConfig {
        name: name.into(),
        transport: McpTransport::Http { url: url.into() },
        allowed_tools: allowed.iter().map(|t| t.to_string()).collect(),
        needs_approval: vec![],
        timeout_ms: 5000,
    }
}

/// A hub that records every status it is told, and does not restart a failed server by itself
/// within a test's time.
fn hub() -> (Arc<McpHub>, Arc<Mutex<Vec<McpServerStatus>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let hub = McpHub::with_policy(
        Arc::new(move |status| record.lock().unwrap().push(status)),
        RestartPolicy {
            delays: vec![Duration::from_secs(600)],
            stable_after: Duration::from_secs(60),
        },
    );
    (hub, seen)
}

async fn wait_state(hub: &McpHub, name: &str, state: McpState) -> McpServerStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = hub.statuses().into_iter().find(|s| s.name == name);
        if let Some(status) = &status {
            if status.state == state {
                return status.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "server '{name}' never became {state:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lists, filters and calls the tools of a ready server named `name` (allowed: all but `crash`).
async fn exercise(hub: &McpHub, name: &str) {
    let status = wait_state(hub, name, McpState::Ready).await;
    let mut listed = status.tools.clone();
    listed.sort();
    let mut all = ALL_TOOLS.map(String::from).to_vec();
    all.sort();
    assert_eq!(listed, all, "every tool the server lists is shown");

    let tools: Vec<_> = hub
        .tools()
        .into_iter()
        .filter(|t| t.server == name)
        .collect();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.clone()).collect();
    names.sort();
    let mut expected: Vec<_> = ["fail", "huge", "lookup_order", "slow"]
        .iter()
        .map(|t| format!("{name}__{t}"))
        .collect();
    expected.sort();
    assert_eq!(names, expected, "only allowed tools are exposed");
    let lookup = tools.iter().find(|t| t.tool == "lookup_order").unwrap();
    assert!(lookup.needs_approval);
    assert!(
        !tools
            .iter()
            .find(|t| t.tool == "slow")
            .unwrap()
            .needs_approval
    );
    assert_eq!(lookup.input_schema["required"][0], "order");
    assert!(lookup.description.contains("order"));

    let out = hub
        .call(
            &format!("{name}__lookup_order"),
            serde_json::json!({"order": "A-1001"}),
        )
        .await
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"order": "A-1001", "status": "shipped", "eta": "tomorrow"})
    );

    let started = Instant::now();
    let e = hub
        .call(&format!("{name}__slow"), serde_json::json!({"ms": 3000}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Timeout, "{e}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(e.message.contains("did not answer in 1 s"), "{e}");
    let out = hub
        .call(&format!("{name}__slow"), serde_json::json!({"ms": 10}))
        .await
        .unwrap();
    assert_eq!(out, "done", "the server still works after a timed-out call");

    let e = hub
        .call(&format!("{name}__fail"), serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (FailureKind::ToolError, "the order system is down")
    );

    let e = hub
        .call(&format!("{name}__huge"), serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::TooLarge, "{e}");

    let e = hub
        .call(&format!("{name}__crash"), serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::NotAvailable, "not allowed: {e}");
    let e = hub
        .call(&format!("{name}__nothing"), serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::NotAvailable, "{e}");
    let e = hub
        .call(&format!("{name}__lookup_order"), serde_json::json!("A-1"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Malformed, "{e}");
}

fn allowed_but_crash() -> Vec<&'static str> {
    vec!["lookup_order", "slow", "fail", "huge"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_server_lists_filters_and_calls() {
    let (hub, seen) = hub();
    let mut config = stdio("orders", &allowed_but_crash(), &[]);
    config.needs_approval = vec!["lookup_order".into()];
    config.timeout_ms = 1000;
    hub.configure(&[config]);
    exercise(&hub, "orders").await;
    let states: Vec<_> = seen.lock().unwrap().iter().map(|s| s.state).collect();
    assert_eq!(&states[..2], &[McpState::Starting, McpState::Ready]);
    hub.shutdown().await;
    assert!(hub.statuses().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_server_lists_filters_and_calls() {
    let (_, server) = mcp_server::serve_http("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (hub, _) = hub();
    let mut config = http("crm", &server.url(), &allowed_but_crash());
    config.needs_approval = vec!["lookup_order".into()];
    config.timeout_ms = 1000;
    hub.configure(&[config]);
    exercise(&hub, "crm").await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_stdio_server_is_failed_and_the_others_keep_working() {
    let (_, other_http) = mcp_server::serve_http("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (hub, seen) = hub();
    hub.configure(&[
        stdio("orders", &ALL_TOOLS, &[]),
        stdio("billing", &["lookup_order"], &[]),
        http("crm", &other_http.url(), &["lookup_order"]),
    ]);
    for name in ["orders", "billing", "crm"] {
        wait_state(&hub, name, McpState::Ready).await;
    }

    let e = hub
        .call("orders__crash", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::ServerUnavailable, "{e}");
    let status = wait_state(&hub, "orders", McpState::Failed).await;
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("server 'orders' exited with status 3"),
        "{message}"
    );
    assert!(message.contains("next try in 10 min"), "{message}");
    assert!(status.tools.is_empty());
    assert!(hub.tools().iter().all(|t| t.server != "orders"));
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.name == "orders" && s.state == McpState::Failed));

    let started = Instant::now();
    let e = hub
        .call("orders__lookup_order", serde_json::json!({"order": "1"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::ServerUnavailable, "{e}");
    assert!(started.elapsed() < Duration::from_millis(100), "fails fast");
    assert!(e.message.contains("exited with status 3"), "{e}");

    for tool in ["billing__lookup_order", "crm__lookup_order"] {
        let out = hub
            .call(tool, serde_json::json!({"order": "B-2"}))
            .await
            .unwrap();
        assert!(out.contains("shipped"), "{tool}: {out}");
    }

    // Asked to, it starts again.
    assert!(hub.retry("orders"));
    wait_state(&hub, "orders", McpState::Ready).await;
    let out = hub
        .call("orders__lookup_order", serde_json::json!({"order": "C-3"}))
        .await
        .unwrap();
    assert!(out.contains("C-3"));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_http_server_is_failed_and_the_others_keep_working() {
    let (_, crashing) = mcp_server::serve_http("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (hub, _) = hub();
    let mut crm = http("crm", &crashing.url(), &ALL_TOOLS);
    crm.timeout_ms = 1000;
    hub.configure(&[crm, stdio("orders", &["lookup_order"], &[])]);
    wait_state(&hub, "crm", McpState::Ready).await;
    wait_state(&hub, "orders", McpState::Ready).await;

    let e = hub
        .call("crm__crash", serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind,
            FailureKind::ServerUnavailable | FailureKind::Timeout
        ),
        "{e:?}"
    );
    let status = wait_state(&hub, "crm", McpState::Failed).await;
    assert!(
        status.message.as_deref().unwrap_or("").contains("'crm'"),
        "{status:?}"
    );
    assert!(hub.tools().iter().all(|t| t.server != "crm"));
    let e = hub
        .call("crm__lookup_order", serde_json::json!({"order": "1"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::ServerUnavailable);

    let out = hub
        .call("orders__lookup_order", serde_json::json!({"order": "D-4"}))
        .await
        .unwrap();
    assert!(out.contains("D-4"));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_command_is_a_clear_failure() {
    let (hub, _) = hub();
    let mut config = stdio("ghost", &["x"], &[]);
    config.transport = McpTransport::Stdio {
        command: "/nonexistent/verbio-no-such-mcp-server".into(),
        args: vec![],
        env: BTreeMap::new(),
    };
    hub.configure(&[config, stdio("orders", &["lookup_order"], &[])]);
    let status = wait_state(&hub, "ghost", McpState::Failed).await;
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("cannot start server 'ghost'") && message.contains("not found"),
        "{message}"
    );
    let e = hub
        .call("ghost__x", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::ServerUnavailable);
    wait_state(&hub, "orders", McpState::Ready).await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_http_server_is_a_clear_failure() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (hub, _) = hub();
    hub.configure(&[http(
        "crm",
        &format!("http://127.0.0.1:{port}/mcp?token=s3cret"),
        &["x"],
    )]);
    let status = wait_state(&hub, "crm", McpState::Failed).await;
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("cannot connect to server 'crm'"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    hub.shutdown().await;
}

/// The `sim-mcp` children of this process whose environment has `MARKER=marker`, with their
/// environment.
#[cfg(target_os = "linux")]
fn children_marked(marker: &str) -> Vec<(u32, Vec<String>)> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<String> = environ
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if vars.iter().any(|v| v == &format!("MARKER={marker}")) {
            found.push((pid, vars));
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfiguring_stops_removed_servers_and_children_get_a_clean_environment() {
    let (hub, _) = hub();
    let kept = stdio("kept", &["lookup_order"], &[("MARKER", "reconf-kept")]);
    let removed = stdio(
        "removed",
        &["lookup_order"],
        &[("MARKER", "reconf-removed")],
    );
    hub.configure(&[kept.clone(), removed]);
    wait_state(&hub, "kept", McpState::Ready).await;
    wait_state(&hub, "removed", McpState::Ready).await;
    let children = children_marked("reconf-removed");
    assert_eq!(children.len(), 1, "one child for the server");
    let (pid, vars) = &children[0];
    let pid = *pid;
    for var in vars {
        let key = var.split('=').next().unwrap_or_default();
        assert!(
            ["PATH", "HOME", "LANG", "MARKER"].contains(&key),
            "the child got {key} from Verbio's environment"
        );
    }

    // Only the allow-list changes: the kept server is not restarted.
    let mut kept_more = kept.clone();
    kept_more.allowed_tools.push("slow".into());
    hub.configure(&[kept_more]);
    assert!(hub.tools().iter().any(|t| t.name == "kept__slow"));
    assert_eq!(children_marked("reconf-kept").len(), 1);
    assert!(hub.statuses().iter().all(|s| s.name != "removed"));
    assert!(hub.tools().iter().all(|t| t.server != "removed"));

    // The removed server's child is ended and reaped (no zombie left under /proc).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the removed server's process {pid} is still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let e = hub
        .call("removed__lookup_order", serde_json::json!({"order": "1"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::NotAvailable);

    hub.shutdown().await;
    assert!(
        children_marked("reconf-kept").is_empty(),
        "shutdown ends every child"
    );
}
