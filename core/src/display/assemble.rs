//! Building results from stored traces: merge an object's windows, follow links with a
//! selector up to a limit, split into connected components, and nest linked objects
//! under their owners (SPEC 6.7).
//!
//! [`Follower`] is a pure state machine: the caller asks it which objects to fetch,
//! reads them wherever they live, and hands them back.

use super::links::{Direction, Selector};
use super::tree::{from_stored, tags, Span};
use crate::ids;
use crate::key::ObjectKey;
use crate::model::LinkRole;
use crate::state::StoredTrace;
use std::collections::{BTreeMap, BTreeSet};

/// Link following over a set of objects.
pub struct Follower {
    limit: usize,
    members: BTreeMap<ObjectKey, Vec<StoredTrace>>,
    order: Vec<ObjectKey>,
    known: BTreeSet<ObjectKey>,
    /// (owner, owned, class) of every kept link.
    edges: BTreeSet<(ObjectKey, ObjectKey, String)>,
    pending: Vec<(ObjectKey, Selector)>,
    truncated: bool,
}

impl Follower {
    /// A follower that admits at most `limit` objects in total.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            members: BTreeMap::new(),
            order: Vec::new(),
            known: BTreeSet::new(),
            edges: BTreeSet::new(),
            pending: Vec::new(),
            truncated: false,
        }
    }

    /// Adds an object found by the search (or named by a cached result) with its
    /// windows, following its links with `selector` (`None`: never follow).
    pub fn add_seed(
        &mut self,
        key: ObjectKey,
        traces: Vec<StoredTrace>,
        selector: Option<Selector>,
    ) {
        self.known.insert(key.clone());
        self.add(key, traces, selector);
    }

    /// Objects to fetch next, with the selector to continue from each.
    pub fn take_pending(&mut self) -> Vec<(ObjectKey, Selector)> {
        std::mem::take(&mut self.pending)
    }

    /// Hands back a fetched object (its windows in the range; possibly none).
    pub fn add_fetched(&mut self, key: ObjectKey, traces: Vec<StoredTrace>, selector: Selector) {
        self.add(key, traces, Some(selector));
    }

    /// Whether the object limit cut link following short.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Objects admitted so far.
    pub fn member_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.order.iter()
    }

    fn add(&mut self, key: ObjectKey, traces: Vec<StoredTrace>, selector: Option<Selector>) {
        if traces.is_empty() || self.members.contains_key(&key) {
            return;
        }
        let mut links: Vec<(ObjectKey, LinkRole, String)> = traces
            .iter()
            .flat_map(|t| {
                t.links
                    .iter()
                    .map(|l| (l.linked.clone(), l.role, l.class.clone()))
            })
            .collect();
        links.sort();
        links.dedup();
        self.members.insert(key.clone(), traces);
        self.order.push(key.clone());
        for (linked, role, class) in links {
            let (owner, owned, going) = match role {
                LinkRole::Parent => (linked.clone(), key.clone(), Direction::Up),
                LinkRole::Child => (key.clone(), linked.clone(), Direction::Down),
            };
            if self.known.contains(&linked) {
                self.edges.insert((owner, owned, class));
                continue;
            }
            let Some(next) = selector.and_then(|s| s.admit(going, &class)) else {
                continue;
            };
            if self.known.len() >= self.limit {
                self.truncated = true;
                continue;
            }
            self.known.insert(linked.clone());
            self.edges.insert((owner, owned, class));
            self.pending.push((linked, next));
        }
    }

    /// One tree per connected component, in the order their first member was added.
    /// `limit_warning` is attached to every root if the limit was hit.
    pub fn assemble(self, range: (i64, i64), limit_warning: &str) -> Vec<Component> {
        let mut trees: BTreeMap<ObjectKey, Span> = self
            .members
            .iter()
            .map(|(k, windows)| (k.clone(), clip(merge_windows(windows), range)))
            .collect();
        let mut neighbours: BTreeMap<&ObjectKey, Vec<(&ObjectKey, bool, &str)>> = BTreeMap::new();
        for (owner, owned, class) in &self.edges {
            if trees.contains_key(owner) && trees.contains_key(owned) {
                neighbours
                    .entry(owner)
                    .or_default()
                    .push((owned, false, class));
                neighbours
                    .entry(owned)
                    .or_default()
                    .push((owner, true, class));
            }
        }
        let mut placed: BTreeSet<ObjectKey> = BTreeSet::new();
        let mut out = Vec::new();
        for start in &self.order {
            if placed.contains(start) {
                continue;
            }
            let root = find_root(start, &neighbours);
            let mut members = Vec::new();
            let mut tree = place(&root, &neighbours, &mut trees, &mut placed, &mut members);
            if self.truncated {
                tree.warnings.push(limit_warning.to_string());
            }
            out.push(Component { tree, members });
        }
        out
    }
}

/// One result: its tree and the objects in it.
pub struct Component {
    /// Object trees nested by ownership.
    pub tree: Span,
    /// Every object placed in the tree.
    pub members: Vec<ObjectKey>,
}

/// Walks up owner edges from `start` to an object with no owner among the members.
fn find_root(
    start: &ObjectKey,
    neighbours: &BTreeMap<&ObjectKey, Vec<(&ObjectKey, bool, &str)>>,
) -> ObjectKey {
    let mut seen = BTreeSet::new();
    let mut at = start;
    while seen.insert(at) {
        match neighbours
            .get(at)
            .and_then(|n| n.iter().find(|(_, is_owner, _)| *is_owner))
        {
            Some((owner, _, _)) => at = owner,
            None => break,
        }
    }
    at.clone()
}

/// Takes `key`'s tree and nests its owned objects under per-class virtual spans.
fn place(
    key: &ObjectKey,
    neighbours: &BTreeMap<&ObjectKey, Vec<(&ObjectKey, bool, &str)>>,
    trees: &mut BTreeMap<ObjectKey, Span>,
    placed: &mut BTreeSet<ObjectKey>,
    members: &mut Vec<ObjectKey>,
) -> Span {
    placed.insert(key.clone());
    members.push(key.clone());
    let mut tree = trees.remove(key).expect("every member has a tree");
    let mut virtual_spans: Vec<Span> = Vec::new();
    let owned: Vec<(ObjectKey, String)> = neighbours
        .get(key)
        .map(|n| {
            n.iter()
                .filter(|(_, is_owner, _)| !is_owner)
                .map(|(k, _, c)| ((*k).clone(), c.to_string()))
                .collect()
        })
        .unwrap_or_default();
    // Only owned objects are nested here; a second owner of an object (a diamond)
    // is not below this root and becomes its own result, where the shared object is
    // reported as repeated.
    for (child, class) in owned {
        if placed.contains(&child) {
            tree.warnings
                .push(format!("repeated object {child} omitted"));
            continue;
        }
        let sub = place(&child, neighbours, trees, placed, members);
        if class.is_empty() {
            tree.children.push(sub);
            continue;
        }
        let i = match virtual_spans.iter().position(|v| v.service == class) {
            Some(i) => i,
            None => {
                virtual_spans.push(virtual_span(&tree, &class));
                virtual_spans.len() - 1
            }
        };
        virtual_spans[i].children.push(sub);
    }
    tree.children.extend(virtual_spans);
    tree
}

fn virtual_span(parent: &Span, class: &str) -> Span {
    Span {
        trace_id: parent.trace_id,
        span_id: ids::span_id(&["class", &parent.span_id.to_string(), class]),
        service: class.to_string(),
        operation: String::new(),
        start_us: parent.start_us,
        duration_us: parent.duration_us,
        tags: vec![
            (tags::TRACE_SOURCE.to_string(), "object".to_string()),
            (tags::PSEUDO_TYPE.to_string(), "linkClass".to_string()),
        ],
        logs: Vec::new(),
        warnings: Vec::new(),
        children: Vec::new(),
    }
}

/// One tree for all windows of one object: the earliest window's object span, its
/// interval widened to cover all, tags of later windows winning, all children kept.
pub fn merge_windows(windows: &[StoredTrace]) -> Span {
    let mut sorted: Vec<&StoredTrace> = windows.iter().collect();
    sorted.sort_by_key(|t| t.object.window.start_us);
    let mut trees = sorted.into_iter().map(from_stored);
    let mut root = trees.next().expect("at least one window");
    for t in trees {
        let end = root.end_us().max(t.end_us());
        root.start_us = root.start_us.min(t.start_us);
        root.duration_us = end - root.start_us;
        for (k, v) in &t.tags {
            root.set_tag(k, v);
        }
        root.logs.extend(t.logs);
        root.children.extend(t.children);
    }
    root
}

/// Clips to the search range: object-source spans take the range as their interval;
/// other spans are kept only if they start strictly inside it.
pub fn clip(mut span: Span, (start, end): (i64, i64)) -> Span {
    if span.tag(tags::TRACE_SOURCE) == Some("object") {
        span.start_us = start;
        span.duration_us = end - start;
    }
    span.children = std::mem::take(&mut span.children)
        .into_iter()
        .filter(|c| {
            c.tag(tags::TRACE_SOURCE) == Some("object") || (start < c.start_us && c.start_us < end)
        })
        .map(|c| clip(c, (start, end)))
        .collect();
    span
}
