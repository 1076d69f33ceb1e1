//! The window index: searches by name seek in windows of the name-ordered layout and
//! still find what a store of the older layout indexed.

use super::*;

fn create_pod(name: &str, id: &str, t: i64) -> Command {
    let pod = object("Pod", "v1", name, 7, None, json!({}));
    audit(
        &key("pods", "", name),
        id,
        "create",
        "",
        t,
        "",
        Some(pod),
        201,
    )
}

fn search(kv: &dyn KvRead, tags: &[(&str, &str)]) -> Vec<(String, i64)> {
    let q = TraceQuery {
        tags: tags
            .iter()
            .map(|(t, v)| (t.to_string(), v.to_string()))
            .collect(),
        start_us: 0,
        end_us: i64::MAX / 2,
        limit: 1_000,
        max_window_us: TTL,
        ..Default::default()
    };
    let mut found: Vec<_> = find_traces(kv, &q)
        .unwrap()
        .into_iter()
        .map(|t| (t.object.key.name, t.object.window.start_us))
        .collect();
    found.sort();
    found
}

fn window_keys(kv: &MemKv) -> Vec<Vec<u8>> {
    kv.0.keys()
        .filter(|k| k[0] == schema::WINDOW)
        .cloned()
        .collect()
}

#[test]
fn a_search_by_name_reads_only_that_name_in_each_window() {
    let mut h = Harness::new(1);
    let pods: Vec<_> = (0..200)
        .map(|i| create_pod(&format!("p{i:03}"), &format!("a{i}"), T0 + i))
        .collect();
    h.apply(pods);
    h.apply(vec![create_pod("p007", "later", T0 + 3 * TTL)]);
    let kv = Counting::new(&h.shards[0]);
    let w0 = crate::window::Window::containing(T0, TTL).start_us;
    let w3 = crate::window::Window::containing(T0 + 3 * TTL, TTL).start_us;
    assert_eq!(
        search(&kv, &[("name", "p007")]),
        vec![("p007".to_string(), w0), ("p007".to_string(), w3)]
    );
    // Per window: one key to find the window, one to find where its entries end, and
    // the object's own entry; plus the object's own records as the trace is loaded.
    assert!(kv.visited.get() < 20, "{} keys visited", kv.visited.get());
    kv.visited.set(0);
    assert_eq!(search(&kv, &[("resource", "pods")]).len(), 201);
    assert!(
        kv.visited.get() >= 201,
        "a search without a name reads the windows"
    );
}

#[test]
fn windows_indexed_by_an_older_version_are_still_searched_and_expired() {
    let mut h = Harness::new(1);
    h.apply(vec![
        create_pod("a", "a1", T0),
        create_pod("b", "b1", T0),
        create_pod("a", "a2", T0 + TTL),
    ]);
    // The store as the older layout left it: no marker, each entry the window start
    // followed by the object key.
    let kv = &mut h.shards[0];
    kv.0.remove(schema::WINDOW_BY_NAME_SINCE);
    for k in window_keys(kv) {
        let (start, key) = schema::parse_window_index(&k).unwrap();
        kv.0.remove(&k);
        let mut old = schema::window_start_prefix(start);
        old.extend_from_slice(key.to_string().as_bytes());
        kv.0.insert(old, Vec::new());
    }
    // The harness's clock is at T0, and the store has entries up to T0's next window,
    // so the name order starts after that one.
    h.apply(vec![
        create_pod("a", "a3", T0 + 4 * TTL),
        create_pod("c", "c1", T0 + TTL),
    ]);
    let window = |t| crate::window::Window::containing(t, TTL).start_us;
    let since: i64 = schema::decode(
        schema::WINDOW_BY_NAME_SINCE,
        &h.shards[0].0[schema::WINDOW_BY_NAME_SINCE],
    )
    .unwrap();
    assert_eq!(since, window(T0 + TTL) + 1);
    let a = |t| ("a".to_string(), window(t));
    assert_eq!(
        search(&h.shards[0], &[("name", "a")]),
        vec![a(T0), a(T0 + TTL), a(T0 + 4 * TTL)]
    );
    assert_eq!(
        search(&h.shards[0], &[("name", "c")]),
        vec![("c".to_string(), window(T0 + TTL))]
    );
    assert_eq!(search(&h.shards[0], &[("resource", "pods")]).len(), 5);

    // Retention deletes windows of both layouts.
    h.apply_on(
        0,
        vec![Command::Expire {
            before_us: T0 + 10 * TTL,
            limit: 100,
        }],
    );
    assert_eq!(window_keys(&h.shards[0]), Vec::<Vec<u8>>::new());
    assert_eq!(search(&h.shards[0], &[("resource", "pods")]), vec![]);
}
