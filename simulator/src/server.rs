//! Listening endpoints. One task per endpoint owns its listener and a
//! `JoinSet` of its connections, so dropping the set (fault `refuse`,
//! shutdown) closes them all; one task per connection serves it
//! ([`crate::session`]).

use crate::fault::EndpointFault;
use crate::{session, Place, Shared};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub(crate) async fn serve_endpoint(shared: Arc<Shared>, index: usize, first: TcpListener) {
    let endpoint = &shared.endpoints[index];
    let Place::Listen(addr) = endpoint.place else {
        unreachable!("a listening endpoint has an address")
    };
    let mut fault = endpoint.fault.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut listener = Some(first);
    loop {
        if *shutdown.borrow() {
            return;
        }
        if matches!(*fault.borrow_and_update(), Some(EndpointFault::Refuse)) {
            listener = None;
            tokio::select! {
                r = fault.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    // Someone took the port while we refused; keep trying.
                    tracing::warn!(addr = %addr, error = %e, "rebind failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            },
        };
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                r = l.accept() => match r {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        shared.endpoints[index]
                            .accepted
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        conns.spawn(connection(shared.clone(), index, stream));
                    }
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        tracing::warn!(addr = %addr, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                r = fault.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if matches!(*fault.borrow(), Some(EndpointFault::Refuse)) {
                        break; // drops the listener and every connection
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn connection(shared: Arc<Shared>, index: usize, mut stream: TcpStream) {
    session::run(&shared, index, &mut stream, session::Options::default()).await;
}
