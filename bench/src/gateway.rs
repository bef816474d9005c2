//! The real gateway as a child process, measured from the outside: its
//! `/metrics` for cycle marks, `/proc` for CPU and memory.

use crate::procfs;
use crate::stats::Mark;
use anyhow::{bail, Context as _};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Gateway {
    child: Child,
    pub api: SocketAddr,
    pub started: Instant,
}

/// A plain HTTP/1.0 GET: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Prometheus text to `name{labels}` → value.
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

impl Gateway {
    /// Starts `lamp-gateway run --config PATH --listen 127.0.0.1:0` and waits
    /// for the line with its HTTP address.
    pub fn start(binary: &Path, config: &Path) -> anyhow::Result<Gateway> {
        let mut child = Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            // The bench polls /readyz until it answers 200; the 503s before
            // that are expected, not errors worth a log line each.
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,tower_http=off".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let started = Instant::now();
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let api = loop {
            let Some(line) = lines.next() else {
                let status = child.wait()?;
                bail!("lamp-gateway exited ({status}) before it listened");
            };
            let line = line?;
            if let Some(url) = line.split("listening on http://").nth(1) {
                break url.trim().parse::<SocketAddr>()?;
            }
        };
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Ok(Gateway {
            child,
            api,
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<f64> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("lamp-gateway exited ({status}) before it was ready");
            }
            if matches!(http_get(self.api, "/readyz"), Ok((200, _))) {
                return Ok(self.started.elapsed().as_secs_f64());
            }
            if Instant::now() > deadline {
                bail!("lamp-gateway not ready within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `devices` RTUs and SLCs are online (the city's
    /// `lampgw_rtus_online` + `lampgw_slcs_online`), reading `/metrics`
    /// every `every`; an error once `limit` has passed since `started`.
    pub fn wait_all_online(
        &self,
        devices: f64,
        every: Duration,
        started: Instant,
        limit: Duration,
    ) -> anyhow::Result<()> {
        loop {
            let m = self.metrics()?;
            let online: f64 = ["lampgw_rtus_online", "lampgw_slcs_online"]
                .iter()
                .map(|n| {
                    m.get(&format!("{n}{{scope=\"city\"}}"))
                        .copied()
                        .unwrap_or(0.0)
                })
                .sum();
            if online >= devices {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!(
                    "{online} of {devices} devices online after {} s",
                    limit.as_secs()
                );
            }
            std::thread::sleep(every);
        }
    }

    pub fn metrics(&self) -> anyhow::Result<HashMap<String, f64>> {
        let (status, body) = http_get(self.api, "/metrics")?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(parse_metrics(&body))
    }

    fn mark(&self, t0: Instant) -> anyhow::Result<(Mark, HashMap<String, f64>)> {
        let m = self.metrics()?;
        let at = t0.elapsed().as_secs_f64();
        let cpu = procfs::cpu_seconds(self.pid()).context("gateway CPU")?;
        let get = |k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
        Ok((
            Mark {
                at,
                cycles: get("lampgw_full_poll_cycles_total"),
                cpu,
                reads: get("lampgw_modbus_reads_total{result=\"ok\"}"),
                device_samples: get("lampgw_device_samples_total"),
            },
            m,
        ))
    }

    /// Waits for the next full-cycle boundary, then records a mark at every
    /// boundary until `cycles` more full cycles are done. Also returns the
    /// last metrics seen.
    /// `/metrics` is read every `scrape`: each read costs the gateway CPU
    /// (its supervision figures walk every lamp), so not too often.
    pub fn measure(
        &self,
        cycles: u64,
        scrape: Duration,
        limit: Duration,
    ) -> anyhow::Result<(Vec<Mark>, HashMap<String, f64>)> {
        let t0 = Instant::now();
        let poll = scrape;
        let (first, _) = self.mark(t0)?;
        let mut marks: Vec<Mark> = Vec::new();
        let mut last_seen = first.cycles;
        loop {
            if t0.elapsed() > limit {
                bail!(
                    "gateway completed {} of {cycles} cycles within {limit:?}",
                    marks
                        .last()
                        .map_or(0, |m| m.cycles.saturating_sub(marks[0].cycles))
                );
            }
            let (m, metrics) = self.mark(t0)?;
            if m.cycles > last_seen {
                last_seen = m.cycles;
                marks.push(m);
                if marks.len() > 1 && m.cycles - marks[0].cycles >= cycles {
                    return Ok((marks, metrics));
                }
            }
            std::thread::sleep(poll);
        }
    }

    pub fn peak_rss_mib(&self) -> Option<f64> {
        procfs::peak_rss_mib(self.pid())
    }

    /// SIGTERM (the gateway flushes its sinks), then waits up to `limit`.
    pub fn stop(mut self, limit: Duration) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    eprintln!("lamp-bench: lamp-gateway exited with {status}");
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("lamp-bench: lamp-gateway still running after {limit:?}; killing it");
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
