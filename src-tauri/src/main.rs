//! `verbio`: the desktop app by default; `verbio serve` runs the bridge headless; `verbio bench` loads it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use verbio::config::{Config, ConfigLayer};

#[derive(Parser)]
#[command(name = "verbio", version, about = "AI voice agent for Twilio calls")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the call bridge without a window (servers, tests).
    Serve(ServeArgs),
    /// Load-test the bridge with simulated calls over loopback and print the measurements.
    #[cfg(feature = "sim")]
    Bench(verbio::bench::BenchArgs),
    /// The test MCP server (`verbio::sim::mcp_server`), for the MCP tools' tests.
    #[cfg(feature = "sim")]
    #[command(hide = true)]
    SimMcp(SimMcpArgs),
}

#[cfg(feature = "sim")]
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct SimMcpArgs {
    /// Speak MCP on stdin/stdout.
    #[arg(long)]
    stdio: bool,
    /// Serve streamable HTTP on this address (port 0: any free one); prints the URL first.
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
}

#[derive(clap::Args)]
struct ServeArgs {
    // `--port`, `--public-url`, …: the lines of the settings table (`verbio::config`) that have a flag.
    #[command(flatten)]
    settings: verbio::config::CommandLine,
    /// Async worker threads (default: one for every two cores; see `verbio::server::runtime`).
    #[arg(long, env = "VERBIO_WORKERS", value_name = "N")]
    workers: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Serve(_))) {
        // Before anything else starts: the process is replaced (same id) unless already done.
        verbio::huge_pages::restart_with_huge_pages();
    }
    verbio::logging::init(verbio::logging::LogFormat::from_env());
    let result = match cli.command {
        Some(Command::Serve(args)) => serve(args),
        #[cfg(feature = "sim")]
        Some(Command::Bench(args)) => verbio::bench::run(args).map_err(|e| e.to_string()),
        #[cfg(feature = "sim")]
        Some(Command::SimMcp(args)) => return sim_mcp(args),
        None => desktop(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("verbio: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the test MCP server; its `crash` tool ends the process with status 3 in both modes.
#[cfg(feature = "sim")]
fn sim_mcp(args: SimMcpArgs) -> ExitCode {
    use verbio::sim::mcp_server;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("verbio: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match args.http {
            None => mcp_server::serve_stdio().await.map(|()| ExitCode::SUCCESS),
            Some(addr) => {
                let (_, mut server) = mcp_server::serve_http(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                let line = format!("listening on {}\n", server.url());
                let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), line.as_bytes());
                tokio::select! {
                    _ = server.stopped() => {
                        Ok(ExitCode::from(mcp_server::CRASH_EXIT_STATUS as u8))
                    }
                    _ = wait_for_shutdown_signal() => Ok(ExitCode::SUCCESS),
                }
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("verbio: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "desktop")]
fn desktop() -> Result<(), String> {
    verbio::desktop::run().map_err(|e| e.to_string())
}

#[cfg(not(feature = "desktop"))]
fn desktop() -> Result<(), String> {
    Err("this build has no desktop window; run `verbio serve` (see --help)".into())
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let flags = ConfigLayer::from_flags(&args.settings).map_err(|e| e.to_string())?;
    let mut config = Config::load_with(flags).map_err(|e| e.to_string())?;
    // Secrets the environment did not set come from the OS keychain (as in the desktop app), if any.
    if std::env::var("VERBIO_KEYCHAIN").as_deref() != Ok("off") {
        match verbio::secrets::Secrets::system().fill_config(&mut config) {
            Ok(filled) if !filled.is_empty() => {
                let names: Vec<&str> = filled.iter().map(|k| k.id()).collect();
                tracing::info!(secrets = ?names, "secrets read from the OS keychain");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::info!(reason = %e, "no OS keychain; secrets come from the environment only")
            }
        }
    }
    let runtime = verbio::server::runtime::build(args.workers)
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let running = verbio::app::start(config)
            .await
            .map_err(|e| e.to_string())?;
        // Printed on stdout so scripts and tests can find the ports when they were 0: Twilio's
        // routes first, then the local API. One write, and a reader that already went away (it only
        // wanted the first line) must not stop the server.
        let lines = format!(
            "verbio serving on http://{}\nverbio API on http://{}\n",
            running.local_addr, running.api_addr
        );
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), lines.as_bytes());
        wait_for_shutdown_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    })
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
