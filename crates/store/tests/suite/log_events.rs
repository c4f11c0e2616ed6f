//! Log streams and events: sequence numbers, ordered range reads, paging,
//! expiry, and appends that race each other.

use crate::fixture::{scope, Fixture};
use berth_store::*;

fn events(timestamps: &[i64]) -> Vec<NewEvent> {
    timestamps
        .iter()
        .map(|&t| NewEvent {
            timestamp: t,
            message: format!("m{t}"),
        })
        .collect()
}

fn keys(events: &[Event]) -> Vec<(i64, i64)> {
    events.iter().map(|e| (e.timestamp, e.seq)).collect()
}

pub async fn streams_are_created_once_and_appends_need_them(f: &Fixture) {
    let s = f.open().await;
    assert!(s.create_stream(&scope(), "g", "a", 5).await.unwrap());
    assert!(!s.create_stream(&scope(), "g", "a", 6).await.unwrap());
    assert!(s
        .append(&scope(), "g", "missing", events(&[1]), 10)
        .await
        .unwrap()
        .is_none());
    let info = s
        .append(&scope(), "g", "a", events(&[100, 300, 200]), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.creation_time, 5);
    assert_eq!(info.last_seq, 3);
    assert_eq!(info.first_event_timestamp, Some(100));
    assert_eq!(info.last_event_timestamp, Some(300));
    assert_eq!(info.last_ingestion_time, Some(10));
    assert_eq!(info.stored_bytes, 12);
    assert_eq!(s.stream(&scope(), "g", "a").await.unwrap(), Some(info));
    // Other scopes do not see it.
    let other = Scope::new("999999999999", "us-east-1");
    assert!(s.stream(&other, "g", "a").await.unwrap().is_none());
}

pub async fn reads_order_by_time_then_sequence_in_both_directions(f: &Fixture) {
    let s = f.open().await;
    s.create_stream(&scope(), "g", "a", 0).await.unwrap();
    s.append(&scope(), "g", "a", events(&[10, 20, 20, 30]), 1)
        .await
        .unwrap();
    // A later batch with earlier timestamps sorts among the first.
    s.append(&scope(), "g", "a", events(&[15]), 2)
        .await
        .unwrap();
    let read = |r: StreamRead| {
        let s = &s;
        async move { keys(&s.read_stream(&scope(), "g", "a", &r).await.unwrap()) }
    };
    let all = StreamRead {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        read(all.clone()).await,
        [(10, 1), (15, 5), (20, 2), (20, 3), (30, 4)]
    );
    let newest_two = StreamRead {
        descending: true,
        limit: 2,
        ..all.clone()
    };
    assert_eq!(read(newest_two).await, [(30, 4), (20, 3)]);
    let after = StreamRead {
        after: Some(EventKey {
            timestamp: 20,
            seq: 2,
        }),
        ..all.clone()
    };
    assert_eq!(read(after).await, [(20, 3), (30, 4)]);
    let before = StreamRead {
        before: Some(EventKey {
            timestamp: 20,
            seq: 2,
        }),
        descending: true,
        ..all.clone()
    };
    assert_eq!(read(before).await, [(15, 5), (10, 1)]);
    let window = StreamRead {
        start_time: Some(15),
        end_time: Some(30),
        ..all
    };
    assert_eq!(read(window).await, [(15, 5), (20, 2), (20, 3)]);
}

pub async fn group_reads_interleave_streams_and_select_them(f: &Fixture) {
    let s = f.open().await;
    for name in ["app/1", "app/2", "db/1"] {
        s.create_stream(&scope(), "g", name, 0).await.unwrap();
    }
    s.append(&scope(), "g", "app/1", events(&[1, 4]), 9)
        .await
        .unwrap();
    s.append(&scope(), "g", "app/2", events(&[2, 4]), 9)
        .await
        .unwrap();
    s.append(&scope(), "g", "db/1", events(&[3]), 9)
        .await
        .unwrap();
    let read = |r: GroupRead| {
        let s = &s;
        async move {
            s.read_group(&scope(), "g", &r)
                .await
                .unwrap()
                .into_iter()
                .map(|e| format!("{}@{}", e.stream, e.timestamp))
                .collect::<Vec<_>>()
        }
    };
    let all = GroupRead {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        read(all.clone()).await,
        ["app/1@1", "app/2@2", "db/1@3", "app/1@4", "app/2@4"]
    );
    let after = GroupRead {
        after: Some(GroupKey {
            timestamp: 4,
            stream: "app/1".into(),
            seq: 2,
        }),
        ..all.clone()
    };
    assert_eq!(read(after).await, ["app/2@4"]);
    let prefix = GroupRead {
        streams: StreamSelector::Prefix("app/".into()),
        end_time: Some(4),
        ..all.clone()
    };
    assert_eq!(read(prefix).await, ["app/1@1", "app/2@2"]);
    let names = GroupRead {
        streams: StreamSelector::Names(vec!["db/1".into(), "app/2".into()]),
        start_time: Some(3),
        ..all
    };
    assert_eq!(read(names).await, ["db/1@3", "app/2@4"]);
}

pub async fn stream_listings_order_and_continue(f: &Fixture) {
    let s = f.open().await;
    for name in ["b", "a", "c", "ab"] {
        s.create_stream(&scope(), "g", name, 0).await.unwrap();
    }
    s.append(&scope(), "g", "c", events(&[5]), 1).await.unwrap();
    s.append(&scope(), "g", "a", events(&[9]), 1).await.unwrap();
    let list = |q: StreamQuery| {
        let s = &s;
        async move {
            s.list_streams(&scope(), "g", &q)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.name)
                .collect::<Vec<_>>()
        }
    };
    let by_name = StreamQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(by_name.clone()).await, ["a", "ab", "b", "c"]);
    let prefixed = StreamQuery {
        prefix: Some("a".into()),
        ..by_name.clone()
    };
    assert_eq!(list(prefixed).await, ["a", "ab"]);
    let page2 = StreamQuery {
        after: Some(StreamCursor {
            last_event_time: 0,
            name: "ab".into(),
        }),
        descending: true,
        ..by_name.clone()
    };
    assert_eq!(list(page2).await, ["a"]);
    let by_time = StreamQuery {
        order: StreamOrder::LastEventTime,
        descending: true,
        limit: 3,
        ..Default::default()
    };
    assert_eq!(list(by_time.clone()).await, ["a", "c", "b"]);
    let next = StreamQuery {
        after: Some(StreamCursor {
            last_event_time: 0,
            name: "b".into(),
        }),
        ..by_time
    };
    assert_eq!(list(next).await, ["ab"]);
}

pub async fn expiry_deletes_old_events_in_bounded_steps(f: &Fixture) {
    let s = f.open().await;
    s.create_stream(&scope(), "g", "a", 0).await.unwrap();
    s.create_stream(&scope(), "g", "b", 0).await.unwrap();
    s.append(&scope(), "g", "a", events(&[1, 2, 3, 50]), 9)
        .await
        .unwrap();
    s.append(&scope(), "g", "b", events(&[4]), 9).await.unwrap();
    assert_eq!(s.group_stored_bytes(&scope(), "g").await.unwrap(), 11);
    assert_eq!(s.delete_before(&scope(), "g", 10, 3).await.unwrap(), 3);
    assert_eq!(s.delete_before(&scope(), "g", 10, 3).await.unwrap(), 1);
    assert_eq!(s.delete_before(&scope(), "g", 10, 3).await.unwrap(), 0);
    let a = s.stream(&scope(), "g", "a").await.unwrap().unwrap();
    assert_eq!(a.first_event_timestamp, Some(50));
    assert_eq!(a.stored_bytes, 3);
    let b = s.stream(&scope(), "g", "b").await.unwrap().unwrap();
    assert_eq!(b.stored_bytes, 0);
    assert_eq!(s.group_stored_bytes(&scope(), "g").await.unwrap(), 3);
    // Sequence numbers are never reused, even once everything expired.
    s.append(&scope(), "g", "b", events(&[60]), 9)
        .await
        .unwrap();
    assert_eq!(
        s.stream(&scope(), "g", "b")
            .await
            .unwrap()
            .unwrap()
            .last_seq,
        2
    );
}

pub async fn deletes_take_streams_and_events_together(f: &Fixture) {
    let s = f.open().await;
    for (g, st) in [("g", "a"), ("g", "b"), ("h", "a")] {
        s.create_stream(&scope(), g, st, 0).await.unwrap();
        s.append(&scope(), g, st, events(&[1]), 1).await.unwrap();
    }
    assert!(s.delete_stream(&scope(), "g", "a").await.unwrap());
    assert!(!s.delete_stream(&scope(), "g", "a").await.unwrap());
    // Recreated, it starts empty.
    s.create_stream(&scope(), "g", "a", 0).await.unwrap();
    let all = StreamRead {
        limit: 10,
        ..Default::default()
    };
    assert!(s
        .read_stream(&scope(), "g", "a", &all)
        .await
        .unwrap()
        .is_empty());
    let mut groups = s.groups_with_streams().await.unwrap();
    groups.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(groups, [(scope(), "g".into()), (scope(), "h".into())]);
    assert_eq!(s.delete_group(&scope(), "g").await.unwrap(), 2);
    assert!(s.stream(&scope(), "g", "b").await.unwrap().is_none());
    assert_eq!(s.groups_with_streams().await.unwrap().len(), 1);
    assert_eq!(
        s.read_stream(&scope(), "h", "a", &all).await.unwrap().len(),
        1
    );
}

pub async fn concurrent_appends_and_commits_all_land_durably(f: &Fixture) {
    let s = f.open().await;
    s.create_stream(&scope(), "g", "a", 0).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let batch = (0..100).map(|j| NewEvent {
                timestamp: 1000 + j,
                message: format!("{i}/{j}"),
            });
            s.append(&scope(), "g", "a", batch.collect(), 1)
                .await
                .unwrap()
                .unwrap();
            s.commit(
                &scope(),
                vec![Write::put_over(Doc::new("k", format!("{i}"), vec![]))],
            )
            .await
            .unwrap();
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    drop(s);
    let reopened = f.open().await;
    let info = reopened.stream(&scope(), "g", "a").await.unwrap().unwrap();
    assert_eq!(info.last_seq, 5000);
    let all = StreamRead {
        limit: 10_000,
        ..Default::default()
    };
    let got = reopened
        .read_stream(&scope(), "g", "a", &all)
        .await
        .unwrap();
    let mut seqs: Vec<i64> = got.iter().map(|e| e.seq).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=5000).collect::<Vec<_>>());
    assert_eq!(reopened.count(&scope(), "k", None, None).await.unwrap(), 50);
}

/// Any UTF-8 message comes back as it went in, NUL characters included.
pub async fn messages_round_trip_exactly(f: &Fixture) {
    let s = f.open().await;
    s.create_stream(&scope(), "g", "a", 0).await.unwrap();
    let messages = ["nul \0 inside", "émoji 🚢", "", "line\nbreak\ttab"];
    let batch = messages
        .iter()
        .map(|m| NewEvent {
            timestamp: 1,
            message: m.to_string(),
        })
        .collect();
    let info = s
        .append(&scope(), "g", "a", batch, 2)
        .await
        .unwrap()
        .unwrap();
    let bytes: usize = messages.iter().map(|m| m.len()).sum();
    assert_eq!(info.stored_bytes, bytes as i64);
    let all = StreamRead {
        limit: 10,
        ..Default::default()
    };
    let got = s.read_stream(&scope(), "g", "a", &all).await.unwrap();
    let got: Vec<&str> = got.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(got, messages);
    assert_eq!(s.delete_before(&scope(), "g", 5, 10).await.unwrap(), 4);
    let info = s.stream(&scope(), "g", "a").await.unwrap().unwrap();
    assert_eq!(info.stored_bytes, 0);
}
