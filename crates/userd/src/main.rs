//! The userd binary: reads the configuration, prepares the database, and serves HTTP.

mod pat_file;
mod serve;
mod settings;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{KEYS, Settings, env_var_of};

fn configuration_help() -> String {
    let mut text = String::from(
        "Configuration, in order of precedence (last wins): built-in defaults, \
         config/default.toml, config/$USERD_ENV.toml, then environment variables.\n\
         USERD_CONFIG_DIR overrides the config directory.\n\nKeys:\n",
    );
    for (key, default, about) in KEYS {
        text.push_str(&format!(
            "  {key:<34} {:<40} default {default}\n      {about}\n",
            env_var_of(key)
        ));
    }
    text
}

#[derive(Debug, Parser)]
#[command(
    name = "userd",
    version,
    about = "A user-management service with a ZITADEL-shaped v3alpha REST API."
)]
#[command(after_long_help = configuration_help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("userd: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = telemetry::init(&settings.log) {
        eprintln!("userd: {error}");
        return ExitCode::from(2);
    }
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(settings),
        Command::Migrate => serve::migrate_only(&settings),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "userd stopped");
            eprintln!("userd: {error}");
            ExitCode::FAILURE
        }
    }
}
