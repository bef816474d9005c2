//! The operator console: crafted requests over HTTP (always), and pages in
//! a real browser — Debian's chromium, headless, driven over WebDriver by
//! chromedriver. A browser test is skipped, saying so, only where chromium
//! or chromedriver is not installed and CI is not set (scripts/test.sh
//! installs both, so CI runs them). Each browser test saves a screenshot
//! under target/console-screenshots/.
//!
//! The city: endpoint i in district D0(i%2+1) — LX-0001-… and LX-0003-… in
//! D01, LX-0002-… in D02.

use crate::common::{eventually, spawn_app_with, TestApp, ADMIN_TOKEN};
use fantoccini::{Client, ClientBuilder, Locator};
use lamp_gateway::auth::Role;
use lamp_gateway::console::users::{hash_password, User, Users};
use lamp_gateway::console::Language;
use lamp_gateway::settings::Settings;
use lamp_sim::{InventoryOptions, SimConfig};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

pub(crate) const PASSWORD: &str = "lamp-console-test";
pub(crate) const OWN_LAMP: &str = "LX-0001-001";
pub(crate) const OTHER_LAMP: &str = "LX-0002-001";

/// One argon2id hash for every test user: hashing is slow on purpose.
fn password_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(PASSWORD).unwrap())
        .clone()
}

/// admin (city-wide), north (operator of D01), watcher (viewer).
pub(crate) async fn console_city(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let t = spawn_app_with(
        SimConfig {
            endpoints: 3,
            slcs_per_endpoint: 2,
            districts: 2,
            ..SimConfig::default()
        },
        InventoryOptions {
            cabinets_without_rtu: 0,
            lamps_without_slc_per_cabinet: 0,
        },
        |s| {
            let mut users = Users::default();
            for (name, role, district) in [
                ("admin", Role::Admin, None),
                ("north", Role::Operator, Some("D01")),
                ("watcher", Role::Viewer, None),
            ] {
                users.upsert(User {
                    name: name.into(),
                    role,
                    district: district.map(String::from),
                    password_hash: password_hash(),
                    language: None,
                });
            }
            users.save(&s.console.users_file).unwrap();
            tweak(s);
        },
    )
    .await;
    t.all_online().await;
    t
}

// ------------------------------------------------------------ plain HTTP

/// A client that shows redirects instead of following them.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in over a form POST; the session cookie's `name=value`.
pub(crate) async fn login(t: &TestApp, user: &str, password: &str) -> Result<String, u16> {
    let r = http()
        .post(format!("{}/console/login", t.base))
        .form(&[("user", user), ("password", password)])
        .send()
        .await
        .unwrap();
    if r.status() != 303 {
        return Err(r.status().as_u16());
    }
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    Ok(cookie.split(';').next().unwrap().to_string())
}

pub(crate) async fn get(t: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let r = http()
        .get(format!("{}{path}", t.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(crate) async fn post(t: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> u16 {
    http()
        .post(format!("{}{path}", t.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("the page has a form with the CSRF token");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test]
async fn crafted_requests_keep_to_the_role_and_district() {
    let t = console_city(|_| {}).await;
    // No session: the pages send to the login form; `/` to the console.
    let r = http().get(format!("{}/", t.base)).send().await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (303, "/console/")
    );
    let (status, _) = get(&t, "lgw_session=forged", "/console/lamps").await;
    assert_eq!(status, 303);

    // The cookie's flags; `Secure` behind a TLS proxy (`auto`).
    let r = http()
        .post(format!("{}/console/login", t.base))
        .header("x-forwarded-proto", "https")
        .form(&[("user", "north"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure"),
        "{set}"
    );
    let north = login(&t, "north", PASSWORD).await.unwrap();

    // Another district's lamp does not exist, as in the API.
    let (status, _) = get(&t, &north, &format!("/console/lamps/{OTHER_LAMP}")).await;
    assert_eq!(status, 404);
    let (status, _) = t
        .get_as(ADMIN_TOKEN, &format!("/api/v1/lamps/{OTHER_LAMP}"))
        .await;
    assert_eq!(status, 200, "the lamp exists");
    let r = http()
        .get(format!("{}/console/lamps/{OWN_LAMP}", t.base))
        .header("cookie", &north)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains(r#"id="controls""#),
        "an operator has controls"
    );
    let token = csrf(&page);

    // The list shows D01's four lamps only; D02 is an unknown district.
    let (status, list) = get(&t, &north, "/console/lamps").await;
    assert_eq!(status, 200);
    assert!(list.contains(r#"data-total="4""#), "{list}");
    assert!(
        list.contains("LX-0003-002") && !list.contains("LX-0002-"),
        "{list}"
    );
    let (status, _) = get(&t, &north, "/console/lamps?district=D02").await;
    assert_eq!(status, 400);

    // A command to the other district's lamp: 404, and the lamp untouched.
    let off = [("csrf", token.as_str()), ("action", "off")];
    let other = format!("/console/lamps/{OTHER_LAMP}/command");
    assert_eq!(post(&t, &north, &other, &off).await, 404);
    // Without the CSRF token, or from another origin: 403.
    let own = format!("/console/lamps/{OWN_LAMP}/command");
    assert_eq!(post(&t, &north, &own, &[("action", "off")]).await, 403);
    let r = http()
        .post(format!("{}{own}", t.base))
        .header("cookie", &north)
        .header("origin", "http://evil.example")
        .form(&off)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A viewer sees no controls, and a crafted command is refused.
    let watcher = login(&t, "watcher", PASSWORD).await.unwrap();
    let (status, page) = get(&t, &watcher, &format!("/console/lamps/{OWN_LAMP}")).await;
    assert_eq!(status, 200);
    assert!(!page.contains(r#"id="controls""#) && !page.contains(r#"id="dim""#));
    let token = csrf(&page);
    let off = [("csrf", token.as_str()), ("action", "off")];
    assert_eq!(post(&t, &watcher, &own, &off).await, 403);
    assert_eq!(post(&t, &watcher, &other, &off).await, 403);
    // Refused before any write was queued: both lamps still on.
    assert!(t.sim.slc_values(0, 0).switch && t.sim.slc_values(1, 0).switch);

    // Logout ends the session for good.
    assert_eq!(
        post(&t, &watcher, "/console/logout", &[("csrf", &token)]).await,
        303
    );
    let (status, _) = get(&t, &watcher, "/console/").await;
    assert_eq!(status, 303);
    t.stop().await;
}

#[tokio::test]
async fn failed_logins_are_limited_per_user() {
    let t = console_city(|_| {}).await;
    for _ in 0..lamp_gateway::console::session::PER_USER {
        assert_eq!(login(&t, "north", "wrong password").await, Err(401));
    }
    // Locked now, even with the right password.
    assert_eq!(login(&t, "north", PASSWORD).await, Err(429));
    assert!(
        login(&t, "admin", PASSWORD).await.is_ok(),
        "another user is not"
    );
    t.stop().await;
}

// ------------------------------------------------------------ browser

/// A headless chromium over chromedriver, one per test; the driver is
/// ended (by its own id) when this is dropped.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: std::process::Child,
    base: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn installed(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// One browser at a time: two cores do not run several chromiums and
/// gateways at once within the tests' deadlines.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A browser of `width`×`height`, or `None` (said) where chromium or
/// chromedriver is not installed locally; in CI their absence fails.
pub(crate) async fn browser(t: &TestApp, width: u32, height: u32) -> Option<Browser> {
    let (Some(chromium), Some(driver)) = (installed("chromium"), installed("chromedriver")) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromedriver must be installed in CI (scripts/test.sh does)"
        );
        eprintln!(
            "SKIPPED: chromium or chromedriver not installed (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = std::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let mut b = Browser {
        client: {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let caps = json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", format!("--window-size={width},{height}")],
                },
            });
            let caps: fantoccini::wd::Capabilities = caps.as_object().unwrap().clone();
            // The driver listens shortly after it starts.
            loop {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(caps.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
                {
                    Ok(c) => break c,
                    Err(e) if tokio::time::Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("no WebDriver session within 20 s: {e}"),
                }
            }
        },
        driver: child,
        base: t.base.clone(),
    };
    b.client.set_window_size(width, height).await.unwrap();
    b.base = t.base.clone();
    Some(b)
}

impl Browser {
    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    pub(crate) async fn login(&self, user: &str, password: &str) {
        self.goto("/console/").await;
        let form = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("form.login"))
            .await
            .expect("no session: the login form");
        form.find(Locator::Css("input[name=user]"))
            .await
            .unwrap()
            .send_keys(user)
            .await
            .unwrap();
        form.find(Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys(password)
            .await
            .unwrap();
        self.click("#login").await;
    }

    pub(crate) async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Waits (20 s at most) for an element.
    pub(crate) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` within 20 s: {e}"))
    }

    /// The element's text; found again if the page was replaced between
    /// finding it and reading it (a form's POST and redirect, a reload).
    pub(crate) async fn text(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match self.wait_for(css).await.text().await {
                Ok(text) => return text,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                        && std::time::Instant::now() < deadline => {}
                Err(e) => panic!("`{css}`: {e}"),
            }
        }
    }

    /// Saves the page as target/console-screenshots/NAME.png.
    pub(crate) async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub(crate) async fn close(mut self) {
        let client = self.client.clone();
        client.close().await.unwrap();
        let _ = self.driver.kill();
    }
}

#[tokio::test]
async fn browser_login_refused_then_login_and_logout() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(|_| {}).await;
    let Some(b) = browser(&t, 1280, 900).await else {
        return;
    };
    b.login("north", "not the password").await;
    let error = b.text("#login-error").await;
    assert_eq!(
        error, "用户名或密码错误",
        "refused, in the default language"
    );
    b.screenshot("login-refused").await;
    assert!(b.client.find(Locator::Css("section.scope")).await.is_err());

    b.login("north", PASSWORD).await;
    b.wait_for("section.scope[data-scope=D01]").await;
    assert!(
        b.client
            .find(Locator::Css("section.scope[data-scope=city]"))
            .await
            .is_err(),
        "a district operator sees no city figures"
    );
    b.click("#logout").await;
    b.wait_for("form.login").await;
    // The session is gone: the overview asks for a login again.
    b.goto("/console/").await;
    b.wait_for("form.login").await;
    b.close().await;
    t.stop().await;
}

/// The API's figure (JSON) for a scope.
async fn api_summary(t: &TestApp, scope: &str) -> Value {
    let path = if scope == "city" {
        "/api/v1/metrics/summary".to_string()
    } else {
        format!("/api/v1/metrics/summary?district={scope}")
    };
    let (status, body) = t.get(&path).await;
    assert_eq!(status, 200, "{body}");
    body
}

const FIGURES: [&str; 6] = [
    "rtu_installation_ratio",
    "rtu_online_rate",
    "slc_control_share",
    "slc_online_rate",
    "lighting_rate",
    "facility_intact_rate",
];

#[tokio::test]
async fn browser_overview_figures_equal_the_api_summary() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(|_| {}).await;
    let Some(b) = browser(&t, 1920, 1080).await else {
        return;
    };
    b.login("admin", PASSWORD).await;
    b.wait_for("section.scope[data-scope=city]").await;
    b.screenshot("overview").await;
    // The page and the API are read a moment apart: equal once they are
    // read within one computation of the figures.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        b.goto("/console/").await;
        let mut differences = Vec::new();
        for scope in ["city", "D01", "D02"] {
            let api = api_summary(&t, scope).await;
            for key in FIGURES {
                let css = format!("section.scope[data-scope={scope}] div[data-figure={key}]");
                let shown = b.wait_for(&css).await.attr("data-value").await.unwrap();
                let shown: Value = serde_json::from_str(&shown.unwrap()).unwrap();
                if shown != api[key] {
                    differences.push(format!("{scope} {key}: page {shown}, API {}", api[key]));
                }
            }
        }
        if differences.is_empty() {
            break;
        }
        let last = differences.join("; ");
        assert!(
            tokio::time::Instant::now() < deadline,
            "never equal: {last}"
        );
    }
    // Not vacuous: every device is online, so the online rates are 100%.
    let city = b
        .text("section.scope[data-scope=city] div[data-figure=rtu_online_rate] .value")
        .await;
    assert_eq!(city, "100.0%");
    b.close().await;
    t.stop().await;
}

#[tokio::test]
async fn browser_dims_a_lamp_and_stays_in_its_district() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(|_| {}).await;
    let Some(b) = browser(&t, 1280, 1100).await else {
        return;
    };
    b.login("north", PASSWORD).await;
    b.wait_for("section.scope").await;
    b.goto(&format!("/console/lamps/{OWN_LAMP}")).await;
    let level = b.wait_for("#level").await;
    level.clear().await.unwrap();
    level.send_keys("40").await.unwrap();
    b.click("#dim").await;
    // The script follows the command and reloads the page when it is done.
    b.wait_for("#command[data-done=true] li[data-state=confirmed]")
        .await;
    assert_eq!(
        t.sim.slc_values(0, 0).dim_level,
        40.0,
        "the register changed"
    );
    let url = b.client.current_url().await.unwrap();
    eventually("the page shows the lamp at 40%", || async {
        b.client.refresh().await.unwrap();
        let values = b.text("#values").await;
        values.lines().any(|l| l.trim() == "40")
    })
    .await;
    b.screenshot("lamp-detail").await;
    // Audited with the person's name as the actor.
    let id = url
        .query_pairs()
        .find(|(k, _)| k == "command")
        .map(|(_, v)| v.to_string())
        .expect("the page names its command");
    let (status, command) = t.get(&format!("/api/v1/commands/{id}")).await;
    assert_eq!(status, 200, "{command}");
    assert_eq!(
        (&command["actor"], &command["source"]),
        (&json!("north"), &json!("console"))
    );

    // Another district's lamp is not found, as in the API.
    b.goto(&format!("/console/lamps/{OTHER_LAMP}")).await;
    assert!(b.text("h1").await.starts_with("404"));
    b.close().await;
    t.stop().await;
}

#[tokio::test]
async fn browser_language_switch_shows_chinese_labels() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(|s| s.console.language = Language::En).await;
    let Some(b) = browser(&t, 1280, 900).await else {
        return;
    };
    b.login("admin", PASSWORD).await;
    let label = "section.scope[data-scope=city] div[data-figure=lighting_rate] .label";
    assert_eq!(
        b.text(label).await,
        "Lighting rate",
        "the configured language"
    );
    b.click("#lang").await;
    eventually("the labels in Chinese", || async {
        b.text(label).await == "亮灯率"
    })
    .await;
    assert_eq!(b.text("h1").await, "总览");
    b.screenshot("overview-zh").await;
    // The choice is the browser's from now on.
    b.goto("/console/lamps").await;
    assert_eq!(b.text("h1").await, "灯具");
    b.close().await;
    t.stop().await;
}

#[tokio::test]
async fn browser_phone_viewport_renders_the_overview() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(|_| {}).await;
    let Some(b) = browser(&t, 390, 844).await else {
        return;
    };
    b.login("admin", PASSWORD).await;
    b.wait_for("section.scope[data-scope=city]").await;
    b.screenshot("overview-phone").await;
    // Nothing wider than the screen; the figures two to a row.
    let layout = b
        .client
        .execute(
            "const f = document.querySelectorAll('section.scope[data-scope=city] .figure');
             return [document.documentElement.scrollWidth, window.innerWidth,
                     f[0].offsetTop, f[1].offsetTop, f[2].offsetTop];",
            vec![],
        )
        .await
        .unwrap();
    let n: Vec<i64> = serde_json::from_value(layout).unwrap();
    assert!(n[0] <= n[1], "no sideways scroll: {n:?}");
    assert!(n[2] == n[3] && n[4] > n[3], "two figures a row: {n:?}");
    b.close().await;
    t.stop().await;
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_expiry_however_used() {
    let t = console_city(|s| {
        s.console.session_idle = Duration::from_secs(1);
        s.console.session_absolute = Duration::from_millis(1500);
    })
    .await;
    let north = login(&t, "north", PASSWORD).await.unwrap();
    let started = std::time::Instant::now();
    let (status, _) = get(&t, &north, "/console/").await;
    assert_eq!(status, 200);
    // Used every 20 ms, so never idle for 1 s, it still ends: the login
    // form from then on.
    eventually("the session expired", || async {
        get(&t, &north, "/console/").await.0 == 303
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "not before its time"
    );
    t.stop().await;
}
