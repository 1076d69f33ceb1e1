//! The sending side of the Raft stream: every group's AppendEntries and votes to one
//! peer travel as frames on one long-lived bidirectional gRPC stream.
//!
//! A unary RPC per message cost each message an HTTP/2 stream of its own (headers,
//! a server task, a reset when openraft gave up on it). Frames on one stream cost a
//! few bytes each, and whatever is ready goes out in one write. Answers are matched to
//! their requests by id and may come back in any order, so a slow group never holds
//! up another's answer.
//!
//! A stream that ends or fails fails every message waiting on it; the next message
//! opens a new one. A peer that does not know the stream (an older version, during a
//! rolling upgrade) is sent unary RPCs for a while instead.

use crate::metrics::RAFT_TRANSPORT;
use kelemetry_proto::kelemetry::cluster::v1::{peer_client::PeerClient, RaftFrame, RaftKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;

/// Frames queued for sending on one stream before senders wait.
const FRAME_QUEUE: usize = 1024;

/// How long a peer that answered "unimplemented" is sent unary RPCs before the
/// stream is tried again.
pub(crate) const UNARY_FALLBACK: Duration = Duration::from_secs(60);

/// Why a message sent on the stream got no answer.
#[derive(Debug)]
pub(crate) enum StreamCallError {
    /// The stream ended (the peer went away or restarted) before the answer came.
    Closed,
    /// No answer within the caller's deadline.
    Timeout,
    /// The peer answered that it could not hand the message to its group.
    Remote(String),
}

type Answer = Result<Vec<u8>, String>;

/// Senders waiting for an answer, by frame id.
type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>;

/// One open Raft stream to a peer.
pub(crate) struct RaftStream {
    frames: mpsc::Sender<RaftFrame>,
    waiting: Waiting,
    next_id: AtomicU64,
    ended: Arc<AtomicBool>,
}

/// What a stream's reader learned when the stream ended.
pub(crate) enum StreamEnd {
    /// The peer has no Raft stream: use unary RPCs.
    Unsupported,
    /// Anything else (the next message opens a new stream).
    Ended,
}

impl RaftStream {
    /// Opens a stream over `client`; `on_end` is told how it ended.
    pub(crate) fn open(
        mut client: PeerClient<Channel>,
        on_end: impl FnOnce(StreamEnd) + Send + 'static,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(FRAME_QUEUE);
        let stream = Arc::new(Self {
            frames: tx,
            waiting: Waiting::default(),
            next_id: AtomicU64::new(0),
            ended: Arc::default(),
        });
        let waiting = stream.waiting.clone();
        let ended = stream.ended.clone();
        RAFT_TRANSPORT.streams_opened.inc();
        tokio::spawn(async move {
            let outbound = tokio_stream::wrappers::ReceiverStream::new(rx);
            let end = match client.raft_stream(outbound).await {
                Err(status) if status.code() == tonic::Code::Unimplemented => {
                    StreamEnd::Unsupported
                }
                Err(_) => StreamEnd::Ended,
                Ok(answers) => {
                    let mut answers = answers.into_inner();
                    while let Ok(Some(frame)) = answers.message().await {
                        let waiter = lock(&waiting).remove(&frame.id);
                        if let Some(w) = waiter {
                            let answer = if frame.error.is_empty() {
                                Ok(frame.payload)
                            } else {
                                Err(frame.error)
                            };
                            let _ = w.send(answer);
                        }
                    }
                    StreamEnd::Ended
                }
            };
            // Dropping the senders fails every waiting call as closed.
            ended.store(true, Ordering::SeqCst);
            lock(&waiting).clear();
            on_end(end);
        });
        stream
    }

    /// Whether the stream has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.ended.load(Ordering::SeqCst) || self.frames.is_closed()
    }

    /// Sends one message of `group` and waits up to `ttl` for its answer.
    pub(crate) async fn call(
        &self,
        group: u32,
        kind: RaftKind,
        payload: Vec<u8>,
        ttl: Duration,
    ) -> Result<Vec<u8>, StreamCallError> {
        if self.is_closed() {
            return Err(StreamCallError::Closed);
        }
        RAFT_TRANSPORT.stream_messages.inc();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id, tx);
        let frame = RaftFrame {
            id,
            group,
            kind: kind as i32,
            payload,
            error: String::new(),
        };
        let outcome = tokio::time::timeout(ttl, async {
            self.frames
                .send(frame)
                .await
                .map_err(|_| StreamCallError::Closed)?;
            match rx.await {
                Ok(Ok(payload)) => Ok(payload),
                Ok(Err(message)) => Err(StreamCallError::Remote(message)),
                Err(_) => Err(StreamCallError::Closed),
            }
        })
        .await
        .unwrap_or(Err(StreamCallError::Timeout));
        if outcome.is_err() {
            lock(&self.waiting).remove(&id);
        }
        outcome
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
