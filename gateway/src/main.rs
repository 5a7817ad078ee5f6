//! The `credgate` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use credgate::cli::{Cli, Command};
use credgate::config::LogFormat;

// A proxy allocates and frees many small buffers per call on every worker thread; mimalloc's
// thread-local free lists do that at a fraction of glibc malloc's cost (about an eighth of the
// data plane's CPU time went to malloc and free under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS provider for the whole process (upstream calls, PostgreSQL, the CLI's client).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("credgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_format, &args.log);
            match runtime.block_on(credgate::server::serve(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("credgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        command => runtime.block_on(credgate::cli::run(command)),
    }
}

fn init_tracing(format: LogFormat, filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: in a file or a log pipeline they are noise,
    // and formatting them costs time on every request's span.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}
