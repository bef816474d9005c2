//! The `lamp-gateway` binary: the command line (`cli`) and the demo. They
//! live here, not in the library, because only the binary needs them.

mod cli;
#[cfg(feature = "demo")]
mod demo;

use clap::Parser;
use cli::{Cli, Command, TokenCommand};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run(args).await,
        Command::CheckConfig(args) => cli::check_config(args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(args).await,
        Command::Token(TokenCommand::New(args)) => cli::token_new(args),
        Command::Migrate(args) => cli::migrate(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
