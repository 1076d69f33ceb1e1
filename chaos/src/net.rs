//! The fault-injecting network that all peer traffic crosses: a TCP proxy in front of
//! each node's peer port, which the node advertises instead of its own.
//!
//! Every node dials its peers from a loopback address of its own
//! (`--peer-source-ip 127.0.0.N`), so the proxy in front of node B knows which node a
//! connection comes from, and applies the two directed links between them: A→B to the
//! bytes A sends (requests), B→A to the bytes coming back (responses). That is how a
//! one-way link can pass requests and lose every answer.
//!
//! A cut direction holds its bytes instead of dropping them. Inside one TCP
//! connection the network never loses or reorders bytes (TCP retransmits), so to the
//! two ends a cut looks like a stalled stream until their own timeouts fire, and a
//! heal delivers what was held, late. A delayed direction delivers every chunk after
//! the delay plus a random jitter, still in order within the connection; traffic on
//! different connections (a reconnect beside a held stream) is reordered.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// The state of one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Link {
    /// Bytes are held until the link is restored.
    pub cut: bool,
    /// Every chunk arrives this much later...
    pub delay: Duration,
    /// ...plus a uniformly random extra up to this.
    pub jitter: Duration,
}

/// Directed links (from, to) that are not in the default (open) state, and a signal
/// that wakes held streams when they change.
struct Links {
    state: Mutex<HashMap<(u64, u64), Link>>,
    changed: watch::Sender<u64>,
}

impl Links {
    fn get(&self, from: u64, to: u64) -> Link {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.get(&(from, to)).copied().unwrap_or_default()
    }
}

/// The proxies and the link table the harness changes.
pub struct Network {
    runtime: tokio::runtime::Runtime,
    links: Arc<Links>,
}

/// Node ids map to loopback addresses from this one on (`127.0.0.10` is node 0).
const FIRST_HOST: u8 = 10;
/// Bytes a proxy reads at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks a direction holds before it stops reading (then TCP pushes back).
const HELD_CHUNKS: usize = 256;

impl Network {
    /// A network with every link open and no proxy yet.
    pub fn new() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("chaos-net")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime,
            links: Arc::new(Links {
                state: Mutex::default(),
                changed: watch::channel(0).0,
            }),
        })
    }

    /// The loopback address node `id` dials its peers from.
    pub fn source_ip(id: u64) -> IpAddr {
        let host = u8::try_from(id)
            .unwrap_or(u8::MAX)
            .saturating_add(FIRST_HOST);
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, host))
    }

    fn node_of(ip: IpAddr) -> Option<u64> {
        match ip {
            IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] && v4.octets()[3] >= FIRST_HOST => {
                Some(u64::from(v4.octets()[3] - FIRST_HOST))
            }
            _ => None,
        }
    }

    /// Starts the proxy in front of node `id`, whose peer server listens on
    /// `upstream`; returns the address peers must use to reach it.
    pub fn front(&self, id: u64, upstream: SocketAddr) -> anyhow::Result<SocketAddr> {
        let listener = self.runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let links = self.links.clone();
        self.runtime.spawn(async move {
            while let Ok((inbound, from)) = listener.accept().await {
                let Some(from) = Self::node_of(from.ip()) else {
                    // Not a node: passed through untouched (never the case in a run).
                    tokio::spawn(relay(inbound, upstream, None, links.clone()));
                    continue;
                };
                tokio::spawn(relay(inbound, upstream, Some((from, id)), links.clone()));
            }
        });
        Ok(addr)
    }

    /// Sets the directed link `from` → `to`.
    pub fn set(&self, from: u64, to: u64, link: Link) {
        let mut state = self.links.state.lock().unwrap_or_else(|p| p.into_inner());
        if link == Link::default() {
            state.remove(&(from, to));
        } else {
            state.insert((from, to), link);
        }
        drop(state);
        self.links.changed.send_modify(|v| *v += 1);
    }

    /// Cuts both directions between every node of `a` and every node of `b`.
    pub fn split(&self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                let cut = Link {
                    cut: true,
                    ..Link::default()
                };
                self.set(x, y, cut);
                self.set(y, x, cut);
            }
        }
    }

    /// Opens every link.
    pub fn heal(&self) {
        self.links
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.links.changed.send_modify(|v| *v += 1);
    }
}

/// Carries one connection from node `link.0` to node `link.1` (or an unknown
/// client when `None`) to the peer server at `upstream`.
async fn relay(
    inbound: TcpStream,
    upstream: SocketAddr,
    link: Option<(u64, u64)>,
    links: Arc<Links>,
) {
    let Ok(outbound) = TcpStream::connect(upstream).await else {
        return; // The node is down: the connection closes, as a refused one would.
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let forth = pump(in_read, out_write, link, links.clone());
    let back = pump(out_read, in_write, link.map(|(a, b)| (b, a)), links);
    // When either direction ends the connection is over, as a reset would make it.
    tokio::select! {
        () = forth => {}
        () = back => {}
    }
}

/// Moves bytes one way, applying the directed link's state to every chunk: held
/// while the link is cut, delivered after its delay and jitter, in order.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    link: Option<(u64, u64)>,
    links: Arc<Links>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(HELD_CHUNKS);
    let reader = {
        let links = links.clone();
        async move {
            let mut jitter = Jitter(u64::from(from.peer_addr().map_or(1, |a| a.port())) | 1);
            let mut last_due = Instant::now();
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.truncate(n);
                let state = link.map_or_else(Link::default, |(a, b)| links.get(a, b));
                let due = (Instant::now() + state.delay + jitter.up_to(state.jitter)).max(last_due);
                last_due = due;
                if tx.send((due, buf)).await.is_err() {
                    return;
                }
            }
        }
    };
    let writer = async move {
        let mut changed = links.changed.subscribe();
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            while link.is_some_and(|(a, b)| links.get(a, b).cut) {
                if changed.changed().await.is_err() {
                    return;
                }
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    // The reader ending (end of stream) drops its sender, so the writer delivers
    // what is held and then ends; the writer ending (the far side is gone) ends both.
    tokio::pin!(writer);
    tokio::select! {
        () = reader => writer.await,
        () = &mut writer => {}
    }
}

/// A small generator for delay jitter.
struct Jitter(u64);

impl Jitter {
    fn up_to(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_micros(self.0 % max.as_micros().max(1) as u64)
    }
}
