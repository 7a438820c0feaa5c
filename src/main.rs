//! respite-server: started like redis-server, `respite-server [CONFIG_FILE] [--directive value ...]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};

#[derive(Parser)]
#[command(name = "respite-server", version, about = "A Redis-compatible caching server")]
struct Args {
    /// [CONFIG_FILE] then directives that override it, as for redis-server:
    /// `server.conf --port 7000 --save ""`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONFIG_FILE] [--directive value"
    )]
    args: Vec<String>,
}

/// Turns `--port 7000 --save ""` into directive lines, as redis-server does.
fn directives(words: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut lines: Vec<Vec<String>> = Vec::new();
    for w in words {
        if let Some(name) = w.strip_prefix("--") {
            lines.push(vec![name.to_string()]);
        } else if let Some(line) = lines.last_mut() {
            line.push(w.clone());
        } else {
            return Err(format!("Invalid argument '{w}': directives start with --"));
        }
    }
    Ok(lines)
}

fn main() -> ExitCode {
    let args = Args::parse().args;
    let (config_file, rest) = match args.first() {
        Some(first) if !first.starts_with("--") => (Some(PathBuf::from(first)), &args[1..]),
        _ => (None, &args[..]),
    };
    let overrides = match directives(rest) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let config = match respite::Config::load(config_file.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("\n{e}");
            return ExitCode::from(1);
        }
    };
    init_logging(&config);
    // `io-threads` event loops serve connections; this thread accepts and runs the cron.
    let workers = match respite::server::Workers::event_loops(config.io_threads()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot start worker threads: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listeners = match respite::server::bind(&config).await {
            Ok(l) => l,
            Err(e) => {
                error!("{e}");
                return ExitCode::from(1);
            }
        };
        let port = listeners.iter().find_map(|l| l.port()).unwrap_or(0);
        let unix = listeners.iter().any(|l| matches!(l, respite::server::Listener::Unix(..)));
        let server = respite::Server::new(config, port);
        // Handlers first: a tool that signals us right after "Ready" must get a clean shutdown.
        let signals = match shutdown_signal() {
            Ok(s) => s,
            Err(e) => {
                error!("cannot install signal handlers: {e}");
                return ExitCode::from(1);
            }
        };
        info!(
            "respite {} (Redis {} compatible), pid={}, port={}",
            env!("CARGO_PKG_VERSION"),
            respite::REDIS_VERSION,
            std::process::id(),
            port
        );
        if port != 0 {
            info!("Ready to accept connections tcp");
        }
        if unix {
            info!("Ready to accept connections unix");
        }
        match respite::server::serve_on(server, listeners, signals, workers).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("{e}");
                ExitCode::from(1)
            }
        }
    })
}

/// Installs SIGTERM/SIGINT handlers now and returns a future that resolves on either.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("Received SIGTERM scheduling shutdown..."),
            _ = int.recv() => info!("Received SIGINT scheduling shutdown..."),
        }
    })
}

fn init_logging(config: &respite::Config) {
    let level = match config.get("loglevel").as_deref() {
        Some("debug") => "debug",
        Some("verbose") => "info",
        Some("warning") => "warn",
        Some("nothing") => "off",
        _ => "info",
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match config.get("logfile").filter(|f| !f.is_empty()) {
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
            Ok(file) => builder.with_ansi(false).with_writer(std::sync::Mutex::new(file)).init(),
            Err(e) => {
                eprintln!("Can't open the log file {path}: {e}");
                builder.init()
            }
        },
        None => builder.init(),
    }
}
