//! `?watch=1`: a stream of `{"type": ..., "object": ...}` lines. Without a
//! resourceVersion (or with `0`) it starts with the current objects as `ADDED`; with
//! one it replays the retained changes after it, or answers a single `ERROR` event
//! with a 410 Status when they were compacted away. `BOOKMARK`s carry the latest
//! resourceVersion when asked for; the stream ends at `timeoutSeconds`, when the
//! client goes away, or when it falls too far behind.

use crate::apiserver::select::Selector;
use crate::apiserver::{ApiServer, Target};
use crate::audit::Requester;
use crate::store::{Change, ChangeType};
use crate::views::{storage_of, to_view};
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Lines buffered for a slow client before the producer waits.
const BUFFER: usize = 256;

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

struct Filter {
    target: Target,
    labels: Selector,
    fields: Selector,
}

impl Filter {
    /// The change as this watch serves it (its type and object), if it concerns
    /// the selection: a modification that moves an object into the selection is
    /// ADDED, one that moves it out is DELETED, as the real server reports them.
    fn view(&self, c: &Change) -> Option<(&'static str, Value)> {
        let resource = self.target.resource();
        if c.resource != storage_of(&resource)
            || !(self.target.namespace.is_empty() || c.namespace == self.target.namespace)
        {
            return None;
        }
        let o = to_view(&resource, (*c.object).clone());
        let now = self.object_matches(&o);
        let before = c
            .previous
            .as_ref()
            .map(|p| self.object_matches(&to_view(&resource, (**p).clone())));
        let kind = match (c.change, before, now) {
            (ChangeType::Modified, Some(true), false) => "DELETED",
            (ChangeType::Modified, Some(false), true) => "ADDED",
            (_, _, true) => c.change.as_str(),
            (_, _, false) => return None,
        };
        Some((kind, o))
    }

    fn object_matches(&self, o: &Value) -> bool {
        self.labels.matches_labels(o) && self.fields.matches_fields(o)
    }
}

/// Starts a watch of `t` for `who` and streams it.
pub fn serve(
    api: Arc<ApiServer>,
    who: Requester,
    uri: &str,
    t: Target,
    q: &HashMap<String, String>,
) -> Response {
    let parse = |name: &str| Selector::parse(q.get(name).map_or("", |s| s), name);
    let filter = match (parse("labelSelector"), parse("fieldSelector")) {
        (Ok(labels), Ok(fields)) => Filter {
            target: t,
            labels,
            fields,
        },
        (Err(e), _) | (_, Err(e)) => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                e.to_status().to_string(),
            )
                .into_response()
        }
    };
    api.watch_started(&who, uri, &filter.target);
    let since = q
        .get("resourceVersion")
        .and_then(|r| r.parse::<u64>().ok())
        .filter(|r| *r > 0);
    let timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800),
    );
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(timeout, stream(&api, &filter, since, bookmarks, &tx)).await;
    });
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Produces the watch's lines until the client goes away or falls behind.
async fn stream(
    api: &ApiServer,
    f: &Filter,
    since: Option<u64>,
    bookmarks: bool,
    tx: &mpsc::Sender<Bytes>,
) -> Option<()> {
    let store = api.store();
    let mut last = match since {
        Some(rv) => rv,
        None => {
            let ns = (!f.target.namespace.is_empty()).then_some(f.target.namespace.as_str());
            let (items, rv) = store.list(&f.target.resource(), ns);
            for o in items.iter().filter(|o| f.object_matches(o)) {
                tx.send(line("ADDED", o)).await.ok()?;
            }
            rv
        }
    };
    let mut start = match store.watch_from(last) {
        Ok(s) => s,
        Err(e) => {
            tx.send(line("ERROR", &e.to_status())).await.ok()?;
            return None;
        }
    };
    for c in &start.backlog {
        if let Some((kind, o)) = f.view(c) {
            tx.send(line(kind, &o)).await.ok()?;
            last = c.rv;
        }
    }
    let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
    ticker.tick().await;
    loop {
        tokio::select! {
            c = start.live.recv() => match c {
                Ok(c) if c.rv > last => {
                    last = c.rv;
                    if let Some((kind, o)) = f.view(&c) {
                        tx.send(line(kind, &o)).await.ok()?;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
            },
            _ = tx.closed() => return None,
            _ = ticker.tick(), if bookmarks => {
                let k = &f.target.kind;
                let mark = json!({"kind": k.kind, "apiVersion": k.api_version(),
                                  "metadata": {"resourceVersion": last.to_string()}});
                tx.send(line("BOOKMARK", &mark)).await.ok()?;
            }
        }
    }
}
