//! `verbio`: the desktop app by default; `verbio serve` runs the bridge headless; `verbio bench` loads it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Port for Twilio's webhook and media socket (env VERBIO_PORT, default 8081).
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind (env VERBIO_BIND, default 127.0.0.1).
    #[arg(long)]
    bind: Option<String>,
    /// The URL Twilio reaches this server at (env VERBIO_PUBLIC_URL).
    #[arg(long)]
    public_url: Option<String>,
    /// Realtime WebSocket URL (env VERBIO_REALTIME_URL).
    #[arg(long)]
    realtime_url: Option<String>,
    /// Folder for the call library (env VERBIO_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Open an ngrok tunnel for Twilio: `ngrok` or `none` (env VERBIO_TUNNEL; authtoken from
    /// NGROK_AUTHTOKEN, reserved domain from NGROK_DOMAIN).
    #[arg(long)]
    tunnel: Option<String>,
    /// Twilio REST API base URL (env TWILIO_API_BASE, default https://api.twilio.com).
    #[arg(long)]
    twilio_api_base: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    verbio::logging::init(verbio::logging::LogFormat::from_env());
    let result = match cli.command {
        Some(Command::Serve(args)) => serve(args),
        #[cfg(feature = "sim")]
        Some(Command::Bench(args)) => verbio::bench::run(args).map_err(|e| e.to_string()),
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

#[cfg(feature = "desktop")]
fn desktop() -> Result<(), String> {
    verbio::desktop::run().map_err(|e| e.to_string())
}

#[cfg(not(feature = "desktop"))]
fn desktop() -> Result<(), String> {
    Err("this build has no desktop window; run `verbio serve` (see --help)".into())
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let mut config = verbio::config::Config::load().map_err(|e| e.to_string())?;
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
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(bind) = args.bind {
        config.bind_host = bind;
    }
    if let Some(url) = args.public_url {
        let mut probe = config.clone();
        probe
            .apply_env(|name| (name == "VERBIO_PUBLIC_URL").then(|| url.clone()))
            .map_err(|e| e.to_string())?;
        config.public_url = probe.public_url;
    }
    if let Some(url) = args.realtime_url {
        config.realtime_url = url;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(tunnel) = args.tunnel {
        config
            .apply_env(|name| (name == "VERBIO_TUNNEL").then(|| tunnel.clone()))
            .map_err(|e| e.to_string())?;
    }
    if let Some(base) = args.twilio_api_base {
        config.telephony.api_base = base;
    }
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let running = verbio::app::start(config)
            .await
            .map_err(|e| e.to_string())?;
        // Printed on stdout so scripts and tests can find the port when it was 0.
        println!("verbio serving on http://{}", running.local_addr);
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
