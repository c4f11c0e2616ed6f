//! Conditional commits from several stores at once (several pools and
//! writers over one database, as several server processes would be):
//! exactly one writer wins each version, and no update is lost.

use crate::fixture::{scope, Backend, Fixture};
use berth_store::{Doc, StoreError, Write};
use std::sync::Arc;

const STORES: usize = 4;
const WRITERS_PER_STORE: usize = 6;

/// STORES stores, opened at once: their migrations race too.
async fn stores(f: &Fixture) -> Vec<Arc<dyn Backend>> {
    let (a, b, c, d) = tokio::join!(f.open(), f.open(), f.open(), f.open());
    vec![a, b, c, d]
}

/// Every writer of every store tries to move a document from one version
/// to the next at once: one succeeds, the rest conflict, and the stored
/// body is the winner's.
pub async fn exactly_one_writer_wins_each_version(f: &Fixture) {
    let stores = stores(f).await;
    // Creation races too: one of all the creators makes it.
    let mut tasks = Vec::new();
    for (n, s) in stores.iter().enumerate() {
        for w in 0..WRITERS_PER_STORE {
            let s = s.clone();
            let body = format!("create {n}/{w}").into_bytes();
            tasks.push(tokio::spawn(async move {
                let doc = Doc::new("k", "contested", body.clone());
                (body, s.commit(&scope(), vec![Write::put_over(doc)]).await)
            }));
        }
    }
    let mut winners = settle(tasks, 1).await;
    for version in 1..=8i64 {
        let (body, _) = winners.pop().unwrap();
        let stored = stores[0]
            .get(&scope(), "k", "contested")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((stored.version, &stored.body), (version, &body));
        let mut tasks = Vec::new();
        for (n, s) in stores.iter().enumerate() {
            for w in 0..WRITERS_PER_STORE {
                let s = s.clone();
                let body = format!("v{version} {n}/{w}").into_bytes();
                let mut doc = stored.clone();
                doc.body = body.clone();
                tasks.push(tokio::spawn(async move {
                    (body, s.commit(&scope(), vec![Write::put_over(doc)]).await)
                }));
            }
        }
        winners = settle(tasks, version + 1).await;
    }
}

type Attempt = (Vec<u8>, berth_store::Result<Vec<i64>>);

/// Waits for every attempt; exactly one must have committed, at
/// `version`, and every other must have been refused as a conflict.
async fn settle(tasks: Vec<tokio::task::JoinHandle<Attempt>>, version: i64) -> Vec<Attempt> {
    let mut winners = Vec::new();
    for t in tasks {
        let (body, outcome) = t.await.unwrap();
        match outcome {
            Ok(ref v) => {
                assert_eq!(v, &[version]);
                winners.push((body, outcome));
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("not a conflict: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one commit wins version {version}"
    );
    winners
}

/// Read-modify-write increments of two counters that every batch moves
/// together, retried on conflict: none is lost, and no batch applies half.
pub async fn increments_are_never_lost_and_batches_never_half_apply(f: &Fixture) {
    let stores = stores(f).await;
    const ROUNDS: u64 = 5;
    let mut tasks = Vec::new();
    for s in &stores {
        for _ in 0..WRITERS_PER_STORE {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    loop {
                        let read = |id: &'static str| {
                            let s = s.clone();
                            async move {
                                s.get(&scope(), "counter", id)
                                    .await
                                    .unwrap()
                                    .unwrap_or_else(|| Doc::new("counter", id, b"0".to_vec()))
                            }
                        };
                        let (mut a, mut b) = (read("a").await, read("b").await);
                        let n: u64 = std::str::from_utf8(&a.body).unwrap().parse().unwrap();
                        a.body = (n + 1).to_string().into_bytes();
                        let m: u64 = std::str::from_utf8(&b.body).unwrap().parse().unwrap();
                        b.body = (m + 1).to_string().into_bytes();
                        match s
                            .commit(&scope(), vec![Write::put_over(a), Write::put_over(b)])
                            .await
                        {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = ROUNDS * (STORES * WRITERS_PER_STORE) as u64;
    for id in ["a", "b"] {
        let doc = stores[1]
            .get(&scope(), "counter", id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(doc.body, total.to_string().into_bytes(), "counter {id}");
        assert_eq!(doc.version, total as i64, "counter {id}");
    }
}

/// Appends to one stream from several stores at once: sequence numbers are
/// dense, unique, and every event is there.
pub async fn appends_from_several_stores_number_events_once(f: &Fixture) {
    let stores = stores(f).await;
    stores[0]
        .create_stream(&scope(), "g", "s", 0)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (n, s) in stores.iter().enumerate() {
        for w in 0..WRITERS_PER_STORE {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0..5 {
                    let events = (0..10)
                        .map(|i| berth_store::NewEvent {
                            timestamp: i,
                            message: format!("{n}/{w}/{round}/{i}"),
                        })
                        .collect();
                    s.append(&scope(), "g", "s", events, 1)
                        .await
                        .unwrap()
                        .unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected = (STORES * WRITERS_PER_STORE * 5 * 10) as i64;
    let info = stores[2].stream(&scope(), "g", "s").await.unwrap().unwrap();
    assert_eq!(info.last_seq, expected);
    let all = berth_store::StreamRead {
        limit: 100_000,
        ..Default::default()
    };
    let events = stores[3]
        .read_stream(&scope(), "g", "s", &all)
        .await
        .unwrap();
    let mut seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=expected).collect::<Vec<_>>());
    let mut messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len() as i64, expected);
}
