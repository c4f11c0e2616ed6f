//! SQS and EventBridge called directly (no HTTP), against a real SQLite
//! store: an event waits in the outbox until delivered, even across a
//! reopened store, and reaches only matching rules' queues.

use berth_api::{Events, Sqs};
use berth_store::SqliteStore;
use berth_wire::events::*;
use berth_wire::sqs::*;
use berth_wire::RequestContext;
use std::sync::Arc;

fn services(store: Arc<SqliteStore>) -> (Sqs, Events) {
    let sqs = Sqs::new(store.clone(), b"k".to_vec(), "http://berth.test");
    let events = Events::new(store, b"k".to_vec(), sqs.clone());
    (sqs, events)
}

async fn put(ev: &Events, ctx: &RequestContext, source: &str) -> String {
    let out = ev
        .put_events(
            ctx,
            PutEventsRequest {
                entries: vec![PutEventsRequestEntry {
                    source: Some(source.into()),
                    detail_type: Some("t".into()),
                    detail: Some(r#"{"n": 1}"#.into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    out.entries.unwrap()[0].event_id.clone().unwrap()
}

async fn receive(sqs: &Sqs, ctx: &RequestContext, url: &str) -> Vec<serde_json::Value> {
    let got = sqs
        .receive_message(
            ctx,
            ReceiveMessageRequest {
                queue_url: url.into(),
                max_number_of_messages: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    got.messages
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str(m.body.as_deref().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn an_event_waits_in_the_outbox_until_delivered_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    let other = RequestContext::for_account("210987654321", "us-east-1");
    let (url, id) = {
        let (sqs, ev) = services(Arc::new(SqliteStore::open(&path).unwrap()));
        let url = sqs
            .create_queue(
                &ctx,
                CreateQueueRequest {
                    queue_name: "q".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .queue_url
            .unwrap();
        assert_eq!(url, "http://berth.test/123456789012/q");
        ev.put_rule(
            &ctx,
            PutRuleRequest {
                name: "r".into(),
                event_pattern: Some(r#"{"source": ["app"]}"#.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let targets = ev
            .put_targets(
                &ctx,
                PutTargetsRequest {
                    rule: "r".into(),
                    targets: vec![Target {
                        id: "t".into(),
                        arn: "arn:aws:sqs:us-east-1:123456789012:q".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(targets.failed_entry_count, Some(0));
        let id = put(&ev, &ctx, "app").await;
        put(&ev, &ctx, "elsewhere").await;
        put(&ev, &other, "app").await;
        // Not delivered yet: the store is dropped as a crash would leave it.
        (url, id)
    };
    let (sqs, ev) = services(Arc::new(SqliteStore::open(&path).unwrap()));
    assert!(receive(&sqs, &ctx, &url).await.is_empty());
    assert_eq!(ev.deliver_pending().await.unwrap(), 3);
    let got = receive(&sqs, &ctx, &url).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["id"], id.as_str());
    assert_eq!(got[0]["source"], "app");
    // Nothing is left to deliver again.
    assert_eq!(ev.deliver_pending().await.unwrap(), 0);
}
