//! `lamp-gateway demo`: the simulator and the gateway in one process, on a
//! generated city of two districts with a few faults to look at.

use crate::cli::DemoArgs;
use lamp_gateway::auth::{hash_token, new_token, Role, TokenConfig};
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_sim::{EndpointFault, InventoryOptions, SimConfig, Simulator, SlcFault};
use std::process::ExitCode;
use std::time::Duration;

/// The sample night plan the demo starts with (config/schedule.json).
const SAMPLE_SCHEDULE: &str = include_str!("../config/schedule.json");

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    // A port in use is said with the flag that moves it, before anything
    // is started or written.
    free(
        args.listen,
        "the API",
        "--listen ADDR (or LAMPGW_DEMO_LISTEN)",
    )?;
    free(
        args.mqtt_listen,
        "the embedded MQTT broker",
        "--mqtt-listen ADDR (or LAMPGW_DEMO_MQTT_LISTEN)",
    )?;
    // A demo that fails before it runs leaves no folder it created behind.
    let created = !args.data.exists();
    let result = demo(&args).await;
    if result.is_err() && created {
        let _ = std::fs::remove_dir_all(&args.data);
    }
    result
}

fn free(addr: std::net::SocketAddr, what: &str, flag: &str) -> anyhow::Result<()> {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) => anyhow::bail!("{what} cannot listen on {addr} ({e}): choose another with {flag}"),
    }
}

async fn demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::default();
    settings.api.listen = args.listen;
    settings.mqtt.embedded_listen = args.mqtt_listen;
    settings.poll.slc_interval = Duration::from_secs(2);
    settings.poll.rtu_interval = Duration::from_secs(2);
    settings.poll.request_timeout = Duration::from_millis(500);
    settings.poll.reconnect_max = Duration::from_secs(5);
    lamp_gateway::telemetry::init(&settings.log);

    let sim = Simulator::start(SimConfig {
        endpoints: 8,
        slcs_per_endpoint: 40,
        districts: 2,
        failure_rate_per_hour: 0.05,
        ..SimConfig::default()
    })
    .await?;
    // A few things for an operator to find: a cabinet that stopped answering,
    // a failed lamp and an SLC whose endpoint lives but which does not answer.
    sim.set_endpoint_fault(7, Some(EndpointFault::Silent));
    sim.set_slc_fault(
        0,
        3,
        SlcFault {
            failed: true,
            ..Default::default()
        },
    );
    sim.set_slc_fault(
        1,
        7,
        SlcFault {
            silent: true,
            ..Default::default()
        },
    );

    let dir = &args.data;
    std::fs::create_dir_all(dir)?;
    let dir = std::path::absolute(dir)?;
    // The city is generated afresh each run (same seed, same ids), so the
    // store's history carries on.
    let inventory = dir.join("inventory");
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&inventory)?;
    std::fs::create_dir_all(&profiles)?;
    for (name, text) in lamp_profile::SHIPPED {
        std::fs::write(profiles.join(name), text)?;
    }
    sim.write_inventory(
        &inventory,
        &InventoryOptions {
            cabinets_without_rtu: 2,
            lamps_without_slc_per_cabinet: 3,
        },
    )?;
    settings.paths.inventory = inventory.clone();
    settings.paths.profiles = profiles;
    // The shipped night plan, unless the demo's folder has one of its own
    // (edits through the API are kept there).
    settings.schedule.file = dir.join("schedule.json");
    settings.alarms.file = dir.join("alarms.open.json");
    settings.control.overrides_file = dir.join("overrides.json");
    settings.alarms.webhook_dir = dir.join("webhooks");
    if !settings.schedule.file.exists() {
        std::fs::write(&settings.schedule.file, SAMPLE_SCHEDULE)?;
    }
    let mut tokens = Vec::new();
    for role in [Role::Viewer, Role::Operator] {
        let token = new_token().map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
        settings.auth.tokens.push(TokenConfig {
            name: format!("demo-{role:?}").to_lowercase(),
            hash: hash_token(&token),
            role,
            district: None,
        });
        tokens.push(token);
    }
    let db = dir.join("store.db");
    settings.store.url = lamp_gateway::store::Backend::Sqlite(db.clone());
    settings.store.spool_dir = dir.join("spool");
    settings.mqtt.spill_dir = dir.join("mqtt-spill");
    settings.mqtt.refresh_interval = Duration::from_secs(60);
    // A person for the console: `demo`, an operator of the whole city, with
    // a fresh password each run (printed below), so a copied folder or an
    // old terminal's scrollback does not keep letting someone in.
    settings.console.users_file = dir.join("users.json");
    settings.control.groups_file = dir.join("groups.json");
    let console_password = lamp_gateway::console::session::random_id()[..16].to_string();
    {
        use lamp_gateway::console::users::{hash_password, User, Users};
        let mut users = Users::load(&settings.console.users_file)?;
        users.upsert(User {
            name: "demo".into(),
            role: Role::Operator,
            district: None,
            password_hash: hash_password(&console_password)?,
            language: None,
        });
        users.save(&settings.console.users_file)?;
    }

    let app = Application::build(settings).await?;
    let base = format!("http://{}", app.local_addr());
    println!(
        "lamp-gateway demo: {} simulated endpoints; data (store, spools, inventory) kept in {}",
        sim.endpoint_addrs().len(),
        dir.display()
    );
    println!("  console    {base}/  user demo  password {console_password}  (operator)");
    println!("  viewer token    {}", tokens[0]);
    println!("  operator token  {}", tokens[1]);
    println!(
        "  try: curl -H 'Authorization: Bearer {}' '{base}/api/v1/lamps?limit=5'",
        tokens[0]
    );
    println!("  API        {base}/api/v1/lamps?limit=5");
    println!("  districts  {base}/api/v1/districts");
    println!("  RTUs       {base}/api/v1/rtus");
    println!("  offline    {base}/api/v1/lamps?online=false");
    println!("  readiness  {base}/readyz    metrics {base}/metrics");
    println!("  tonight    {base}/api/v1/schedules/preview?date=<YYYY-MM-DD>&cabinet=CAB-0001");
    println!("  history    {base}/api/v1/lamps/LX-0001-001/history?from=<RFC 3339>&to=<RFC 3339>");
    println!("  store      SQLite at {}", db.display());
    if let Some(mqtt) = app.mqtt_embedded() {
        println!(
            "  MQTT       mosquitto_sub -h {} -p {} -t 'streetlight/#' -v    (embedded broker)",
            mqtt.ip(),
            mqtt.port()
        );
    }
    println!("Ctrl-C to stop.");
    let stop = app.stopper();
    tokio::spawn(async move {
        crate::cli::shutdown_signal().await;
        stop.cancel();
    });
    app.run_until_stopped().await?;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
