//! The `lamp-gateway` binary: the command line (`cli`), commissioning
//! (`commission`) and the demo. They
//! live here, not in the library, because only the binary needs them.

mod cli;
mod commission;
#[cfg(feature = "demo")]
mod demo;

use clap::Parser;
use cli::{Cli, Command, TokenCommand, UserCommand};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run(args).await,
        Command::CheckConfig(args) => cli::check_config(args).await,
        Command::Probe(args) => commission::probe(args).await,
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(args).await,
        Command::Token(TokenCommand::New(args)) => cli::token_new(args),
        Command::User(UserCommand::Add(args)) => cli::user_add(args),
        Command::User(UserCommand::List(args)) => cli::user_list(args),
        Command::User(UserCommand::Remove(args)) => cli::user_remove(args),
        Command::Migrate(args) => cli::migrate(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            exit_code(&e)
        }
    }
}

/// A configuration that does not load or check exits 2, as `check-config`
/// does for its problems (README); anything else 1.
fn exit_code(e: &anyhow::Error) -> ExitCode {
    let config = e
        .downcast_ref::<lamp_gateway::settings::SettingsError>()
        .is_some()
        || matches!(
            e.downcast_ref::<lamp_gateway::startup::StartupError>(),
            Some(lamp_gateway::startup::StartupError::Config(_))
        );
    if config {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// The error and its causes, each once: many error types show their source
/// in their own message too, so a cause already in the text so far is not
/// repeated (`{:#}` would print it twice).
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
