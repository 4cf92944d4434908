//! The userd binary: reads the configuration, prepares the database, and serves HTTP.

mod delivery;
mod pat_file;
mod rebuild;
mod recover;
mod serve;
mod settings;
mod telemetry;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Issue a new IAM_OWNER token straight against the database, for when the admin
    /// token is lost. Writes it to bootstrap.admin_pat_path (mode 0600) unless told
    /// otherwise.
    AdminToken(AdminTokenArgs),
    /// Rewrite the current-state tables (users, usernames) from the event log, in one
    /// transaction that holds off writers. Safe while userd serves.
    RebuildProjection(RebuildArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Only compare the tables with the log and report; change nothing. Exits 1 when
    /// they differ.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct AdminTokenArgs {
    /// The user to issue it for (made IAM_OWNER if it is not). By default the
    /// longest-standing usable IAM_OWNER, or a new admin user if none is left.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Write the token to this file (mode 0600) instead of bootstrap.admin_pat_path.
    #[arg(long, conflicts_with = "print")]
    pub output: Option<PathBuf>,
    /// Print the token on standard output instead of writing a file.
    #[arg(long)]
    pub print: bool,
    /// Days until the token expires; by default it does not.
    #[arg(long)]
    pub expires_in_days: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("userd: {}", serve::chain(&error));
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let sink = match command {
        Command::Serve => telemetry::Sink::Stdout,
        _ => telemetry::Sink::Stderr,
    };
    if let Err(error) = telemetry::init(&settings.log, sink) {
        eprintln!("userd: {error}");
        return ExitCode::from(2);
    }
    let outcome = match command {
        Command::Serve => serve::serve(settings),
        Command::Migrate => serve::migrate_only(&settings),
        Command::AdminToken(args) => recover::admin_token(&settings, args),
        Command::RebuildProjection(args) => rebuild::rebuild_projection(&settings, &args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let chain = serve::chain(&error);
            tracing::error!(error = %chain, "userd stopped");
            eprintln!("userd: {chain}");
            ExitCode::FAILURE
        }
    }
}
