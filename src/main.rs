use clap::Parser;
use lamp_gateway::cli::{Cli, Command, TokenCommand};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => lamp_gateway::cli::run(args).await,
        Command::CheckConfig(args) => lamp_gateway::cli::check_config(args),
        Command::Demo(args) => lamp_gateway::demo::run(args).await,
        Command::Token(TokenCommand::New(args)) => lamp_gateway::cli::token_new(args),
        Command::Migrate(args) => lamp_gateway::cli::migrate(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
