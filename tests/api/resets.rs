//! Connection resets, which an HTTP double cannot send: a TCP proxy in front of a double that, on a
//! seeded share of requests, resets the caller's connection (RST: `SO_LINGER` 0) either
//! before the request reaches the double (no effect) or once the double has answered (the effect
//! took place, its answer is lost). Writes (`POST`, `PATCH`) are counted by what happened to them,
//! with the status of each answer the reset swallowed, so a scenario can find them in the attempts
//! log; reads are reset too, and counted apart (Amazon's are retried inline; the program's order
//! lookup is not, so its reset shows as a status-less attempt of its own).
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What the proxy did, by kind: "reset" (a write reset before it reached the double), "lost reset
/// {status}" (a write the double answered with `status`, its answer reset) and "read reset" (a
/// read, either way).
#[derive(Clone, Default)]
pub struct Resets {
    kinds: Arc<Mutex<BTreeMap<String, usize>>>,
    relayed: Arc<Mutex<usize>>,
}

impl Resets {
    /// The resets by kind.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.kinds.lock().unwrap().clone()
    }

    fn of(&self, kind: &str) -> usize {
        self.kinds.lock().unwrap().get(kind).copied().unwrap_or(0)
    }

    /// Connections reset in all.
    pub fn total(&self) -> usize {
        self.kinds.lock().unwrap().values().sum()
    }

    /// Writes reset, before or after their effect, but for answers the caller had stopped waiting
    /// for: a "timeout" fault answers 504 after the caller's timeout, and on a slow machine the
    /// caller may close after that answer came; that attempt counts as a timeout already.
    pub fn writes(&self) -> usize {
        self.total() - self.of("read reset") - self.of("lost reset 504")
    }

    /// Writes whose answer, of this status, was reset after their effect.
    pub fn lost(&self, status: u16) -> usize {
        self.of(&format!("lost reset {status}"))
    }

    /// Requests that came through the proxy, reset or not.
    pub fn relayed(&self) -> usize {
        *self.relayed.lock().unwrap()
    }

    fn count(&self, kind: String) {
        *self.kinds.lock().unwrap().entry(kind).or_default() += 1;
    }
}

/// A proxy listening on 127.0.0.1 in front of `upstream`.
pub struct ResetProxy {
    pub addr: SocketAddr,
    pub resets: Resets,
}

impl ResetProxy {
    /// Resets `share` (0.0 to 1.0) of the requests, half of them before and half after the
    /// double answered, on a schedule drawn from `seed`. It runs on a thread of its own, as the
    /// doubles do: a scenario may block its own thread waiting for a process.
    pub fn start(upstream: SocketAddr, seed: u64, share: f64) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let resets = Resets::default();
        let counted = resets.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
                while let Ok((client, _)) = listener.accept().await {
                    let (rng, resets) = (rng.clone(), counted.clone());
                    tokio::spawn(async move {
                        if let Ok(upstream) = TcpStream::connect(upstream).await {
                            relay(client, upstream, share, &rng, &resets).await;
                        }
                    });
                }
            });
        });
        Self { addr, resets }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string().trim_end_matches('/').to_owned()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Pass,
    ResetBefore,
    ResetAfter,
}

/// Closes `stream` with a reset rather than a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Relays one keep-alive connection request by request: the first bytes from the caller after an
/// answer start the next request, whose fate is drawn then.
async fn relay(
    mut client: TcpStream,
    mut upstream: TcpStream,
    share: f64,
    rng: &Mutex<StdRng>,
    resets: &Resets,
) {
    let (mut from_client, mut from_upstream) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let mut next_is_request = true;
    let mut fate = Fate::Pass;
    let mut write = false;
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if next_is_request {
                    next_is_request = false;
                    *resets.relayed.lock().unwrap() += 1;
                    let head = &from_client[..n];
                    write = head.starts_with(b"POST ") || head.starts_with(b"PATCH ");
                    fate = {
                        let mut rng = rng.lock().unwrap();
                        match rng.random_bool(share) {
                            false => Fate::Pass,
                            true if rng.random_bool(0.5) => Fate::ResetBefore,
                            true => Fate::ResetAfter,
                        }
                    };
                    if fate == Fate::ResetBefore {
                        resets.count(if write { "reset" } else { "read reset" }.into());
                        return reset(client);
                    }
                }
                if upstream.write_all(&from_client[..n]).await.is_err() {
                    return;
                }
            }
            read = upstream.read(&mut from_upstream) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if fate == Fate::ResetAfter {
                    // "HTTP/1.1 500 …": the status the caller never sees.
                    let status = String::from_utf8_lossy(&from_upstream[..n.min(12)])
                        .split(' ')
                        .nth(1)
                        .unwrap_or("?")
                        .to_owned();
                    resets.count(if write {
                        format!("lost reset {status}")
                    } else {
                        "read reset".into()
                    });
                    return reset(client);
                }
                // An answer may come in several reads; the caller's next bytes are a new request.
                next_is_request = true;
                if client.write_all(&from_upstream[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
