//! Command-line interface: `run`, `check-config`, `probe`, `migrate`, `demo`, `token`, `user`.

use clap::{Args, Parser, Subcommand};
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_gateway::validate;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lamp-gateway",
    version = env!("LAMPGW_VERSION"),
    about = "Street-lighting single-lamp control gateway"
)]
#[derive(Debug)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll the configured city and serve its state until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Check settings, inventory and profiles; report every problem.
    CheckConfig(CheckArgs),
    /// Commissioning: read one device field by field (and write), before it
    /// goes into the inventory.
    Probe(crate::commission::ProbeArgs),
    /// Run the gateway on a simulated district, all in one process.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The people who may log in to the operator console.
    #[command(subcommand)]
    User(UserCommand),
    /// Create or update the store's tables (`store.url`) and exit.
    Migrate(MigrateArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token and the settings entry that admits it.
    New(TokenArgs),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (or replace one of that name); the password is the first
    /// line of standard input.
    Add(UserAddArgs),
    /// List the users: name, role, district.
    List(UserFileArgs),
    /// Remove a user; their sessions end at their next request.
    Remove(UserRemoveArgs),
}

#[derive(Debug, Args)]
pub struct UserFileArgs {
    /// Settings file (default: config/default.toml); the users file is its
    /// `console.users_file`, under `paths.data`.
    #[arg(long, default_value = "config/default.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    pub name: String,
    /// viewer, operator or admin.
    #[arg(long)]
    pub role: lamp_gateway::auth::Role,
    /// Confine the user to one district.
    #[arg(long)]
    pub district: Option<String>,
    /// Read the password from standard input without a prompt (scripts);
    /// without it a terminal is prompted. Either way it is one line of
    /// standard input, never an argument, which other users could read.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub file: UserFileArgs,
}

#[derive(Debug, Args)]
pub struct UserRemoveArgs {
    pub name: String,
    #[command(flatten)]
    pub file: UserFileArgs,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// viewer, operator or admin.
    #[arg(long)]
    pub role: lamp_gateway::auth::Role,
    /// Confine the token to one district.
    #[arg(long)]
    pub district: Option<String>,
    /// Who holds it (recorded as the actor of commands).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Settings file (default: config/default.toml).
    #[arg(long, default_value = "config/default.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Settings file (default: config/default.toml).
    #[arg(long, default_value = "config/default.toml")]
    pub config: PathBuf,
    /// Inventory folder, overriding `paths.inventory`.
    #[arg(long)]
    pub inventory: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Also open the store for writing (SQLite file, PostgreSQL connection,
    /// 5 s at most), and after the file checks try each endpoint once and
    /// list the unreachable ones.
    #[arg(long)]
    pub probe: bool,
    /// Time all the probes together may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub probe_budget: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// API listen address, overriding `api.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// API listen address.
    #[arg(long, default_value = "127.0.0.1:8080", env = "LAMPGW_DEMO_LISTEN")]
    pub listen: SocketAddr,
    /// The embedded MQTT broker's address (Mosquitto usually holds 1883).
    #[arg(
        long,
        default_value = "127.0.0.1:1884",
        env = "LAMPGW_DEMO_MQTT_LISTEN"
    )]
    pub mqtt_listen: SocketAddr,
    /// Where the demo keeps its store, spools, inventory and profiles; kept
    /// after the demo stops, so its history grows run after run.
    #[arg(long, default_value = "demo-data", env = "LAMPGW_DEMO_DATA")]
    pub data: std::path::PathBuf,
}

fn settings(args: &ConfigArgs) -> anyhow::Result<Settings> {
    let mut s = Settings::load(Some(&args.config))?;
    if let Some(dir) = &args.inventory {
        s.paths.inventory = dir.clone();
        s.pinned_inventory = Some(dir.clone());
    }
    Ok(s)
}

pub async fn check_config(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let s = settings(&args.config)?;
    let mut loaded = validate::load(&s);
    if args.probe {
        // The store's problems join the others, so all are listed at once.
        let store = validate::probe_store(&s).await;
        if !store.is_empty() {
            let mut issues = loaded.err().unwrap_or_default();
            issues.extend(store);
            loaded = Err(issues);
        }
    }
    match loaded {
        Ok(loaded) => {
            println!(
                "configuration OK: {} districts, {} cabinets, {} lamps, {} endpoints, {} devices, {} reads per cycle",
                loaded.inventory.districts.len(),
                loaded.inventory.cabinets.len(),
                loaded.inventory.lamps.len(),
                loaded.topology.endpoints.len(),
                loaded.topology.device_count(),
                loaded.topology.read_count(),
            );
            if args.probe {
                let unreachable = crate::commission::probe_endpoints(
                    &loaded.topology.endpoints,
                    &s.poll,
                    args.probe_budget,
                )
                .await;
                if unreachable > 0 {
                    eprintln!("{unreachable} endpoint(s) unreachable");
                    return Ok(ExitCode::FAILURE);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(issues) => {
            for i in &issues {
                eprintln!("{i}");
            }
            eprintln!("{} problem(s) found", issues.len());
            Ok(ExitCode::from(2))
        }
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut s = settings(&args.config)?;
    if let Some(listen) = args.listen {
        s.api.listen = listen;
    }
    lamp_gateway::telemetry::init(&s.log);
    let app = Application::build(s).await?;
    println!("lamp-gateway listening on http://{}", app.local_addr());
    let stop = app.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested");
        stop.cancel();
    });
    #[cfg(unix)]
    tokio::spawn(reload_on_sighup(app.reloads()));
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a token once (it is not stored anywhere) and its settings entry.
pub fn token_new(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let token =
        lamp_gateway::auth::new_token().map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let name = args.name.unwrap_or_else(|| {
        format!(
            "{:?}-{}",
            args.role,
            args.district.as_deref().unwrap_or("city")
        )
        .to_lowercase()
    });
    println!("token: {token}");
    println!("\n# add to the settings file:");
    println!(
        "[[auth.tokens]]\nname = \"{name}\"\nhash = \"{}\"",
        lamp_gateway::auth::hash_token(&token)
    );
    println!("role = \"{}\"", format!("{:?}", args.role).to_lowercase());
    if let Some(d) = args.district {
        println!("district = \"{d}\"");
    }
    Ok(ExitCode::SUCCESS)
}

fn users_file(args: &UserFileArgs) -> anyhow::Result<(Settings, PathBuf)> {
    let s = Settings::load(Some(&args.config))?;
    let path = s.console.users_file.clone();
    Ok((s, path))
}

pub fn user_add(args: UserAddArgs) -> anyhow::Result<ExitCode> {
    use lamp_gateway::console::users::{self, User, Users};
    use std::io::{BufRead, IsTerminal, Write};
    users::check_name(&args.name)?;
    let (settings, path) = users_file(&args.file)?;
    if let Some(d) = &args.district {
        // The district must be the inventory's, as a token's must.
        match validate::load(&settings) {
            Ok(loaded) if loaded.inventory.district(d).is_none() => {
                anyhow::bail!("unknown district `{d}` (not in the inventory)")
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("warning: the configuration does not load; district `{d}` not checked")
            }
        }
    }
    let stdin = std::io::stdin();
    if !args.password_stdin && stdin.is_terminal() {
        eprint!("password for {} (shown as typed): ", args.name);
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    let hash = users::hash_password(password)?;
    let mut all = Users::load(&path)?;
    let replaced = all.get(&args.name).is_some();
    all.upsert(User {
        name: args.name.clone(),
        role: args.role,
        district: args.district.clone(),
        password_hash: hash,
        language: None,
    });
    all.save(&path)?;
    println!(
        "user {} {} in {}",
        args.name,
        if replaced { "replaced" } else { "added" },
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn user_list(args: UserFileArgs) -> anyhow::Result<ExitCode> {
    let (_, path) = users_file(&args)?;
    let all = lamp_gateway::console::users::Users::load(&path)?;
    for u in &all.users {
        println!(
            "{}\t{}\t{}",
            u.name,
            format!("{:?}", u.role).to_lowercase(),
            u.district.as_deref().unwrap_or("(city)")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn user_remove(args: UserRemoveArgs) -> anyhow::Result<ExitCode> {
    let (_, path) = users_file(&args.file)?;
    let mut all = lamp_gateway::console::users::Users::load(&path)?;
    if !all.remove(&args.name) {
        eprintln!("no user `{}` in {}", args.name, path.display());
        return Ok(ExitCode::FAILURE);
    }
    all.save(&path)?;
    println!("user {} removed from {}", args.name, path.display());
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let s = Settings::load(Some(&args.config))?;
    let backend = &s.store.url;
    let Some(db) = lamp_gateway::store::Db::connect_lazy(backend, 1)? else {
        println!("store.url is `none`: nothing to migrate");
        return Ok(ExitCode::SUCCESS);
    };
    db.migrate().await?;
    println!("store migrated ({}): {}", db.kind(), describe(backend));
    Ok(ExitCode::SUCCESS)
}

fn describe(b: &lamp_gateway::store::Backend) -> String {
    match b {
        lamp_gateway::store::Backend::Sqlite(p) => p.display().to_string(),
        lamp_gateway::store::Backend::Postgres(u) => {
            // Where, not who: the part after the credentials.
            let u = secrecy::ExposeSecret::expose_secret(u);
            u.split('@').next_back().unwrap_or_default().to_string()
        }
        lamp_gateway::store::Backend::Disabled => "none".into(),
    }
}

/// Each `SIGHUP` asks for a reload; the application logs what it changed,
/// or every problem and that nothing was changed.
#[cfg(unix)]
async fn reload_on_sighup(reloads: lamp_gateway::api::Reloads) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: reload through the API only");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = lamp_gateway::api::ReloadRequest {
            by: "sighup".into(),
            reply,
        };
        if reloads.send(request).await.is_err() {
            return;
        }
        // The outcome is logged where the reload runs.
        let _ = answer.await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
