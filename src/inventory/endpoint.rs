//! Where a cabinet's Modbus endpoint is, as the inventory's `endpoint` cell
//! spells it:
//!
//! - `host:port` — a Modbus TCP server or a serial-to-TCP converter, dialled
//!   by the gateway (framing `tcp`, the default, or `rtu-over-tcp`);
//! - `serial:/dev/ttyUSB0?baud=9600&parity=N&data_bits=8&stop_bits=1` — an
//!   RS-485 bus on a local serial port, RTU framing (the options default to
//!   9600 baud, 8 data bits, no parity, 1 stop bit);
//! - `dtu:JN-CAB-0042` — a 4G DTU that dials in to the `[dialin]` listener
//!   and registers with that id (RTU framing by default, `tcp` allowed).
//!
//! Any of them may end in `request_gap=20ms` (after `?`, or `&` on serial):
//! a pause between frames for slow buses and converters. The endpoint is the
//! part before the options; cabinets sharing one must agree on the options.

use super::Framing;
use std::fmt;
use std::time::Duration;

/// Parity bit of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// An RS-485 bus on a local serial port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SerialLine {
    pub path: String,
    pub baud: u32,
    pub parity: Parity,
    pub data_bits: u8,
    pub stop_bits: u8,
}

/// How the gateway reaches an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Link {
    /// Dialled over TCP: `host:port`.
    Tcp { address: String },
    /// A local serial port; one task owns it, every unit on it shares it.
    Serial(SerialLine),
    /// A DTU (数据传输单元) that connects to the gateway and registers with `id`.
    DialIn { id: String },
}

/// A parsed `endpoint` cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointAddr {
    pub link: Link,
    /// Pause before each request after the last byte on the link.
    pub request_gap: Duration,
}

impl EndpointAddr {
    /// The endpoint's identity, without options: two cabinets naming the same
    /// key share one poller.
    pub fn key(&self) -> String {
        match &self.link {
            Link::Tcp { address } => address.clone(),
            Link::Serial(s) => format!("serial:{}", s.path),
            Link::DialIn { id } => format!("dtu:{id}"),
        }
    }

    /// The framing when the inventory's `framing` cell is empty.
    pub fn default_framing(&self) -> Framing {
        match self.link {
            Link::Tcp { .. } => Framing::Tcp,
            Link::Serial(_) | Link::DialIn { .. } => Framing::Rtu,
        }
    }

    /// The framing for a `framing` cell, or why it cannot be used here.
    pub fn framing(&self, cell: Option<Framing>) -> Result<Framing, String> {
        match (&self.link, cell) {
            (_, None) => Ok(self.default_framing()),
            (Link::Serial(_), Some(Framing::Tcp)) => Err(format!(
                "endpoint {}: a serial line carries RTU frames; framing `tcp` is for sockets",
                self.key()
            )),
            (_, Some(f)) => Ok(f),
        }
    }
}

impl fmt::Display for EndpointAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl std::str::FromStr for EndpointAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (head, query) = match s.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (s, None),
        };
        let mut options = Options::parse(query)?;
        let link = if let Some(path) = head.strip_prefix("serial:") {
            if path.is_empty() {
                return Err("`serial:` needs a device path, e.g. serial:/dev/ttyUSB0".into());
            }
            let line = SerialLine {
                path: path.to_string(),
                baud: options.take("baud", 9600, |v| {
                    v.parse::<u32>()
                        .ok()
                        .filter(|b| (50..=4_000_000).contains(b))
                        .ok_or("a rate such as 9600")
                })?,
                parity: options.take("parity", Parity::None, |v| match v {
                    "N" | "n" | "none" => Ok(Parity::None),
                    "E" | "e" | "even" => Ok(Parity::Even),
                    "O" | "o" | "odd" => Ok(Parity::Odd),
                    _ => Err("N, E or O"),
                })?,
                data_bits: options.take("data_bits", 8, |v| match v {
                    "7" => Ok(7),
                    "8" => Ok(8),
                    _ => Err("7 or 8"),
                })?,
                stop_bits: options.take("stop_bits", 1, |v| match v {
                    "1" => Ok(1),
                    "2" => Ok(2),
                    _ => Err("1 or 2"),
                })?,
            };
            Link::Serial(line)
        } else if let Some(id) = head.strip_prefix("dtu:") {
            check_dtu_id(id)?;
            Link::DialIn { id: id.to_string() }
        } else {
            check_host_port(head)?;
            Link::Tcp {
                address: head.to_string(),
            }
        };
        let request_gap = options.take("request_gap", Duration::ZERO, |v| {
            humantime::parse_duration(v).map_err(|_| "a duration such as 20ms")
        })?;
        options.finish()?;
        Ok(EndpointAddr { link, request_gap })
    }
}

/// The registration id a DTU sends: printable ASCII, as DTUs are configured.
fn check_dtu_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err("`dtu:` needs the DTU's registration id (1–64 characters)".into());
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'&')
    {
        return Err(format!(
            "DTU id `{id}`: only printable ASCII without spaces, `?` or `&`"
        ));
    }
    Ok(())
}

fn check_host_port(s: &str) -> Result<(), String> {
    let shape = "is not `host:port`, `serial:PATH` or `dtu:ID`";
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("endpoint `{s}` {shape}"));
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("endpoint `{s}` {shape}"));
    }
    Ok(())
}

/// `k=v&k=v` options, each used at most once, none left unknown.
struct Options(Vec<(String, String)>);

impl Options {
    fn parse(query: Option<&str>) -> Result<Options, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!("endpoint option `{pair}` is not `name=value`"));
            };
            if out.iter().any(|(seen, _)| seen == k) {
                return Err(format!("endpoint option `{k}` is given twice"));
            }
            out.push((k.to_string(), v.to_string()));
        }
        Ok(Options(out))
    }

    fn take<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<T, String> {
        let Some(i) = self.0.iter().position(|(k, _)| k == key) else {
            return Ok(default);
        };
        let (_, v) = self.0.remove(i);
        parse(&v).map_err(|want| format!("endpoint option {key}={v}: want {want}"))
    }

    fn finish(self) -> Result<(), String> {
        match self.0.first() {
            None => Ok(()),
            Some((k, _)) => Err(format!(
                "unknown endpoint option `{k}` (baud, parity, data_bits, stop_bits for serial; request_gap for any)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<EndpointAddr, String> {
        s.parse()
    }

    #[test]
    fn tcp_serial_and_dial_in_parse_with_defaults() {
        let tcp = parse("10.1.2.3:502").unwrap();
        assert_eq!(
            tcp.link,
            Link::Tcp {
                address: "10.1.2.3:502".into()
            }
        );
        assert_eq!(tcp.request_gap, Duration::ZERO);
        assert_eq!(tcp.default_framing(), Framing::Tcp);

        let serial = parse("serial:/dev/ttyUSB0").unwrap();
        assert_eq!(
            serial.link,
            Link::Serial(SerialLine {
                path: "/dev/ttyUSB0".into(),
                baud: 9600,
                parity: Parity::None,
                data_bits: 8,
                stop_bits: 1
            })
        );
        assert_eq!(serial.default_framing(), Framing::Rtu);
        assert_eq!(serial.key(), "serial:/dev/ttyUSB0");

        let dtu = parse("dtu:JN-CAB-0042").unwrap();
        assert_eq!(
            dtu.link,
            Link::DialIn {
                id: "JN-CAB-0042".into()
            }
        );
        assert_eq!(dtu.framing(Some(Framing::Tcp)), Ok(Framing::Tcp));
    }

    #[test]
    fn serial_options_and_request_gap() {
        let e =
            parse("serial:/dev/ttyS1?baud=19200&parity=E&data_bits=7&stop_bits=2&request_gap=25ms")
                .unwrap();
        let Link::Serial(s) = &e.link else {
            panic!("{e:?}")
        };
        assert_eq!(
            (s.baud, s.parity, s.data_bits, s.stop_bits),
            (19200, Parity::Even, 7, 2)
        );
        assert_eq!(e.request_gap, Duration::from_millis(25));
        assert_eq!(
            parse("10.0.0.1:502?request_gap=1s").unwrap().request_gap,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn bad_endpoints_say_what_is_wrong() {
        let cases = [
            ("serial:", "device path"),
            ("serial:/dev/x?baud=0", "baud=0"),
            ("serial:/dev/x?parity=X", "N, E or O"),
            (
                "serial:/dev/x?speed=9600",
                "unknown endpoint option `speed`",
            ),
            ("serial:/dev/x?baud=9600&baud=4800", "twice"),
            ("dtu:", "registration id"),
            ("dtu:a b", "printable"),
            ("10.0.0.1", "host:port"),
            ("10.0.0.1:0", "host:port"),
            ("10.0.0.1:502?request_gap=soon", "duration"),
            ("10.0.0.1:502?baud=9600", "unknown endpoint option `baud`"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
        let serial = parse("serial:/dev/x").unwrap();
        assert!(serial.framing(Some(Framing::Tcp)).is_err());
    }
}
