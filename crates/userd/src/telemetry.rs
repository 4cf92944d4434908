use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::settings::{LogFormat, LogSettings};

/// Where log lines go: the server logs to standard output; commands that print a result
/// log to standard error, to keep their output clean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

/// Installs the global subscriber: JSON lines for machines, coloured text for people.
pub fn init(settings: &LogSettings, sink: Sink) -> Result<(), String> {
    let filter = EnvFilter::try_new(&settings.level)
        .map_err(|e| format!("invalid log.level {:?}: {e}", settings.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE);
    let builder = match sink {
        Sink::Stdout => builder
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
                std::io::stdout,
            )),
        Sink::Stderr => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
                std::io::stderr,
            )),
    };
    let installed = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}
