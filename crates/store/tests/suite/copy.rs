//! `berth store copy`: a populated store copied into an empty one of the
//! other backend, and back, holds exactly what it held (versions, sequence
//! numbers with their gaps, stream counters).

use crate::fixture::{scope, Backend, Fixture};
use berth_store::copy::{copy, RawDoc, RawStream, Transfer};
use berth_store::{Doc, Event, NewEvent, Scope, Write};

async fn populate(s: &dyn Backend) {
    let other = Scope::new("210987654321", "eu-west-1");
    for sc in [scope(), other.clone()] {
        // Enough documents for several chunks, and versions above 1.
        let writes = (0..2500)
            .map(|i| {
                Write::put_over(
                    Doc::new(
                        "task",
                        format!("t{i:05}"),
                        format!("{{\"n\":{i}}}").into_bytes(),
                    )
                    .with_parent(format!("c{}", i % 3))
                    .with_status(if i % 2 == 0 {
                        "RUNNING"
                    } else {
                        "STOPPED"
                    }),
                )
            })
            .collect();
        s.commit(&sc, writes).await.unwrap();
        let mut doc = s.get(&sc, "task", "t00007").await.unwrap().unwrap();
        doc.body = b"{\"n\":\"again\"}".to_vec();
        s.commit(&sc, vec![Write::put_over(doc)]).await.unwrap();
        s.commit(
            &sc,
            vec![Write::put_over(Doc::new(
                "cluster",
                "c0",
                vec![0, 159, 146, 150],
            ))],
        )
        .await
        .unwrap();
    }
    for (g, st) in [("g", "a"), ("g", "b"), ("h", "a")] {
        s.create_stream(&other, g, st, 7).await.unwrap();
        let events = (0..1500)
            .map(|i| NewEvent {
                timestamp: i,
                message: format!("{g}/{st} event {i} \0"),
            })
            .collect();
        s.append(&other, g, st, events, 9).await.unwrap();
    }
    // Sequence numbers 1..=100 of group g's streams expire: gaps the copy keeps.
    s.delete_before(&other, "g", 100, 10_000).await.unwrap();
    s.create_stream(&scope(), "empty", "stream", 1)
        .await
        .unwrap();
}

/// Everything a store holds, through the copy's own walks.
async fn contents(s: &dyn Transfer) -> (Vec<RawDoc>, Vec<(RawStream, Vec<Event>)>) {
    let mut docs = Vec::new();
    loop {
        let next = s
            .dump_docs(docs.last().map(RawDoc::key).as_ref(), 700)
            .await
            .unwrap();
        if next.is_empty() {
            break;
        }
        docs.extend(next);
    }
    let mut streams = Vec::new();
    for st in s.dump_streams().await.unwrap() {
        let events = s.dump_events(&st, 0, 1_000_000).await.unwrap();
        streams.push((st, events));
    }
    (docs, streams)
}

async fn round_trip(source: &Fixture, through: &Fixture) {
    let a = source.open().await;
    populate(&*a).await;
    let b = through.open().await;
    let stats = copy(&*a, &*b).await.unwrap();
    assert_eq!((stats.docs, stats.streams, stats.events), (5002, 4, 4300));
    // Into a store that holds something: refused.
    assert!(copy(&*a, &*b).await.is_err());
    let back = Fixture::sqlite();
    let c = back.open().await;
    copy(&*b, &*c).await.unwrap();
    let original = contents(&*a).await;
    assert_eq!(original.0.len(), 5002);
    assert_eq!(contents(&*b).await, original);
    assert_eq!(contents(&*c).await, original);
    // The copy is a working store: versions and sequence numbers go on.
    let doc = c.get(&scope(), "task", "t00007").await.unwrap().unwrap();
    assert_eq!(doc.version, 2);
    let other = Scope::new("210987654321", "eu-west-1");
    let info = c
        .append(
            &other,
            "g",
            "a",
            vec![NewEvent {
                timestamp: 5000,
                message: "m".into(),
            }],
            10,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.last_seq, 1501);
}

/// SQLite into the fixture's backend and back into SQLite.
pub async fn a_store_copies_into_another_and_back_losing_nothing(f: &Fixture) {
    round_trip(&Fixture::sqlite(), f).await;
}
