//! Serial lines (an RS-485 converter on a local tty) as a link's stream.

use super::Stream;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_serial::{SerialPort, SerialPortBuilderExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parity {
    None,
    Even,
    Odd,
}

/// How to open a serial line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SerialParams {
    pub(crate) path: String,
    pub(crate) baud: u32,
    pub(crate) parity: Parity,
    /// 7 or 8.
    pub(crate) data_bits: u8,
    /// 1 or 2.
    pub(crate) stop_bits: u8,
}

/// Opens the line in raw mode (no echo, no line discipline: Modbus frames are
/// binary), without flow control, and exclusively: a second gateway or a
/// stray terminal program on the same bus would garble every frame, so it is
/// better refused at open. Call it inside the tokio runtime (the port is
/// registered with its reactor).
pub(crate) fn open(p: &SerialParams) -> io::Result<Box<dyn Stream>> {
    let data_bits = match p.data_bits {
        7 => tokio_serial::DataBits::Seven,
        8 => tokio_serial::DataBits::Eight,
        n => return Err(bad(format!("{n} data bits: 7 or 8"))),
    };
    let stop_bits = match p.stop_bits {
        1 => tokio_serial::StopBits::One,
        2 => tokio_serial::StopBits::Two,
        n => return Err(bad(format!("{n} stop bits: 1 or 2"))),
    };
    let parity = match p.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    // serialport opens with TIOCEXCL and an exclusive flock, and cfmakeraw.
    let mut port = tokio_serial::new(&p.path, p.baud)
        .data_bits(data_bits)
        .stop_bits(stop_bits)
        .parity(parity)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(io::Error::from)?;
    #[cfg(unix)]
    port.set_exclusive(true).map_err(io::Error::from)?;
    // Whatever arrived before the settings applied is garbled; the link
    // would skip it anyway, this spares it the work. Not every tty can.
    let _ = port.clear(tokio_serial::ClearBuffer::Input);
    Ok(Box::new(SerialLine { port }))
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The port, with a flush that does not wait for the UART. tokio-serial's
/// flush is `tcdrain`, a blocking system call that would hold a runtime
/// worker for the whole transmit time of the frame (270 ms for 256 bytes at
/// 9600 baud); the bytes are in the kernel's queue and go out regardless.
#[derive(Debug)]
struct SerialLine {
    port: tokio_serial::SerialStream,
}

impl AsyncRead for SerialLine {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.port).poll_read(cx, buf)
    }
}

impl AsyncWrite for SerialLine {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.port).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::link::{attach, LinkFraming, LinkOptions};
    use std::io::{Read, Write};
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;
    use tokio_modbus::client::Reader;
    use tokio_modbus::slave::{Slave, SlaveContext};

    /// The socat process, ended (by its own handle) however the test ends.
    struct Socat(Child);

    impl Drop for Socat {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn params(path: &Path) -> SerialParams {
        SerialParams {
            path: path.to_string_lossy().into_owned(),
            baud: 9600,
            parity: Parity::Even,
            data_bits: 8,
            stop_bits: 1,
        }
    }

    #[test]
    fn bad_framing_parameters_are_refused() {
        let mut p = params(Path::new("/nonexistent"));
        p.data_bits = 9;
        assert_eq!(open(&p).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let mut p = params(Path::new("/nonexistent"));
        p.stop_bits = 3;
        assert_eq!(open(&p).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert!(open(&params(Path::new("/nonexistent/tty"))).is_err());
    }

    #[tokio::test]
    async fn a_frame_over_a_socat_pty_pair() {
        if Command::new("socat").arg("-V").output().is_err() {
            println!("SKIPPED: socat not installed (apt-get install socat)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let _socat = Socat(
            Command::new("socat")
                .arg(format!("pty,raw,echo=0,link={}", a.display()))
                .arg(format!("pty,raw,echo=0,link={}", b.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        for _ in 0..100 {
            if a.exists() && b.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let stream = open(&params(&a)).unwrap();
        // Exclusive: a second open of the same line is refused.
        assert!(open(&params(&a)).is_err());

        // The unit: the other end as a plain file, answering one request.
        let unit = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&b)
                .unwrap();
            let mut req = [0u8; 8];
            f.read_exact(&mut req).unwrap();
            // Heartbeat-like noise first, then the reply.
            f.write_all(b"hb").unwrap();
            f.write_all(&[0x01, 0x03, 0x02, 0x00, 0x2A, 0x39, 0x9B])
                .unwrap();
            req
        });

        let mut ctx = attach(
            stream,
            LinkOptions {
                framing: LinkFraming::Rtu,
                request_gap: Duration::ZERO,
                heartbeat: None,
            },
        );
        ctx.set_slave(Slave(1));
        let words = tokio::time::timeout(
            Duration::from_secs(5),
            ctx.read_holding_registers(0x0000, 1),
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
        assert_eq!(words, [42]);
        assert_eq!(
            unit.await.unwrap(),
            [0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A]
        );
    }
}
