//! A TCP proxy that a test or bench can sever: in front of PostgreSQL or
//! an MQTT broker, it stands for the network between the gateway and them
//! going away (every open connection closed, new ones refused) and coming
//! back, without touching the shared server itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards TCP connections to a target; `sever` closes every open
/// connection and refuses new ones until `restore`.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free local port and forwards each connection to
    /// `target` (host:port).
    pub async fn start(target: &str) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let open = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let target = target.to_string();
        let task = {
            let open = open.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mut severed = cut.subscribe();
                    let target = target.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = severed.changed() => {}
                        }
                    });
                }
            })
        };
        Ok(Proxy {
            addr,
            open,
            cut,
            task,
        })
    }

    pub fn sever(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    /// Stops accepting and closes what is still open: a proxy that is gone
    /// forwards nothing.
    fn drop(&mut self) {
        self.task.abort();
        self.cut.send_modify(|g| *g += 1);
    }
}
