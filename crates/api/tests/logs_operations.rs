//! The CloudWatch Logs operations called directly (no HTTP), against a real
//! SQLite store.

use berth_api::Logs;
use berth_store::{LogEventStore, NewEvent, Scope, SqliteStore};
use berth_wire::logs::*;
use berth_wire::{ApiError, RequestContext};
use std::collections::BTreeMap;
use std::sync::Arc;

const DAY: i64 = 24 * 60 * 60 * 1000;

struct Harness {
    _dir: tempfile::TempDir,
    logs: Logs,
    /// The store underneath, to plant what the API would refuse.
    store: Arc<SqliteStore>,
    ctx: RequestContext,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("berth.db")).unwrap());
    Harness {
        _dir: dir,
        logs: Logs::new(store.clone(), b"test-key".to_vec()),
        store,
        ctx: RequestContext::for_account("123456789012", "us-east-1"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> String {
    r.unwrap_err().code.to_string()
}

fn events(base: i64, n: usize) -> Vec<InputLogEvent> {
    (0..n)
        .map(|i| InputLogEvent {
            timestamp: base + i as i64,
            message: format!("event {i}"),
        })
        .collect()
}

impl Harness {
    async fn group(&self, name: &str) {
        self.logs
            .create_log_group(
                &self.ctx,
                CreateLogGroupRequest {
                    log_group_name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    async fn stream(&self, group: &str, stream: &str) {
        self.logs
            .create_log_stream(
                &self.ctx,
                CreateLogStreamRequest {
                    log_group_name: group.into(),
                    log_stream_name: stream.into(),
                },
            )
            .await
            .unwrap();
    }

    async fn put(
        &self,
        group: &str,
        stream: &str,
        log_events: Vec<InputLogEvent>,
    ) -> Result<PutLogEventsResponse, ApiError> {
        self.logs
            .put_log_events(
                &self.ctx,
                PutLogEventsRequest {
                    log_group_name: group.into(),
                    log_stream_name: stream.into(),
                    log_events,
                    ..Default::default()
                },
            )
            .await
    }

    async fn get(&self, req: GetLogEventsRequest) -> Result<GetLogEventsResponse, ApiError> {
        self.logs.get_log_events(&self.ctx, req).await
    }

    async fn filter(
        &self,
        req: FilterLogEventsRequest,
    ) -> Result<FilterLogEventsResponse, ApiError> {
        self.logs.filter_log_events(&self.ctx, req).await
    }

    async fn groups(&self, req: DescribeLogGroupsRequest) -> DescribeLogGroupsResponse {
        self.logs.describe_log_groups(&self.ctx, req).await.unwrap()
    }

    async fn stored_bytes(&self) -> i64 {
        let groups = self.groups(DescribeLogGroupsRequest::default()).await;
        groups.log_groups.unwrap()[0].stored_bytes.unwrap()
    }
}

fn get_req(group: &str, stream: &str) -> GetLogEventsRequest {
    GetLogEventsRequest {
        log_group_name: Some(group.into()),
        log_stream_name: stream.into(),
        ..Default::default()
    }
}

fn messages(events: &Option<Vec<OutputLogEvent>>) -> Vec<String> {
    events
        .iter()
        .flatten()
        .map(|e| e.message.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn log_group_lifecycle() {
    let h = harness();
    h.group("/ecs/web").await;
    let dup = h
        .logs
        .create_log_group(
            &h.ctx,
            CreateLogGroupRequest {
                log_group_name: "/ecs/web".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(dup), "ResourceAlreadyExistsException");
    let g = h
        .groups(DescribeLogGroupsRequest::default())
        .await
        .log_groups
        .unwrap();
    assert_eq!(g.len(), 1);
    let g = &g[0];
    assert_eq!(g.log_group_name.as_deref(), Some("/ecs/web"));
    assert_eq!(
        g.arn.as_deref(),
        Some("arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web:*")
    );
    assert_eq!(
        g.log_group_arn.as_deref(),
        Some("arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web")
    );
    assert_eq!(g.metric_filter_count, Some(0));
    assert_eq!(g.stored_bytes, Some(0));
    assert_eq!(g.log_group_class, Some(LogGroupClass::Standard));
    assert_eq!(g.retention_in_days, None);
    assert!((now() - g.creation_time.unwrap()).abs() < 60_000);

    for bad in ["", "has space", "a:b", "aws/lambda/x", &"a".repeat(513)] {
        let r = h
            .logs
            .create_log_group(
                &h.ctx,
                CreateLogGroupRequest {
                    log_group_name: bad.into(),
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(code(r), "InvalidParameterException", "{bad:?}");
    }
    h.group(&"a".repeat(512)).await;
    h.group("Weird_.-/#9").await;

    let del = |name: &str| {
        h.logs.delete_log_group(
            &h.ctx,
            DeleteLogGroupRequest {
                log_group_name: name.into(),
            },
        )
    };
    del("/ecs/web").await.unwrap();
    assert_eq!(code(del("/ecs/web").await), "ResourceNotFoundException");
    // Gone, and its name is free again.
    h.group("/ecs/web").await;
}

#[tokio::test]
async fn describe_log_groups_filters_and_pages() {
    let h = harness();
    for name in ["/a/1", "/a/2", "/a/3", "/b/1", "/b/DataLogs", "/c/datalogs"] {
        h.group(name).await;
    }
    let names = |r: &DescribeLogGroupsResponse| -> Vec<String> {
        r.log_groups
            .iter()
            .flatten()
            .map(|g| g.log_group_name.clone().unwrap())
            .collect()
    };
    let prefixed = h
        .groups(DescribeLogGroupsRequest {
            log_group_name_prefix: Some("/a/".into()),
            limit: Some(2),
            ..Default::default()
        })
        .await;
    assert_eq!(names(&prefixed), ["/a/1", "/a/2"]);
    let rest = h
        .groups(DescribeLogGroupsRequest {
            log_group_name_prefix: Some("/a/".into()),
            limit: Some(2),
            next_token: prefixed.next_token.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(names(&rest), ["/a/3"]);
    assert_eq!(rest.next_token, None);
    // A token is only good for the listing that issued it.
    let other = h
        .logs
        .describe_log_groups(
            &h.ctx,
            DescribeLogGroupsRequest {
                log_group_name_prefix: Some("/b/".into()),
                next_token: prefixed.next_token,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(other), "InvalidParameterException");

    // The pattern is a case-sensitive substring; results carry only name, ARN, creation time.
    let pattern = h
        .groups(DescribeLogGroupsRequest {
            log_group_name_pattern: Some("DataLogs".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(names(&pattern), ["/b/DataLogs"]);
    let g = &pattern.log_groups.unwrap()[0];
    assert!(g.arn.is_some() && g.creation_time.is_some());
    assert!(g.stored_bytes.is_none() && g.log_group_arn.is_none());

    // Paging through everything with a pattern, one at a time.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = h
            .groups(DescribeLogGroupsRequest {
                log_group_name_pattern: Some("/".into()),
                limit: Some(1),
                next_token: token,
                ..Default::default()
            })
            .await;
        seen.extend(names(&page));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 6);

    for bad in [
        DescribeLogGroupsRequest {
            log_group_name_prefix: Some("/a".into()),
            log_group_name_pattern: Some("a".into()),
            ..Default::default()
        },
        DescribeLogGroupsRequest {
            limit: Some(51),
            ..Default::default()
        },
        DescribeLogGroupsRequest {
            next_token: Some("garbage".into()),
            ..Default::default()
        },
    ] {
        let r = h.logs.describe_log_groups(&h.ctx, bad).await;
        assert_eq!(code(r), "InvalidParameterException");
    }
}

#[tokio::test]
async fn retention_policies() {
    let h = harness();
    h.group("g").await;
    let put = |days: i32, name: &str| {
        h.logs.put_retention_policy(
            &h.ctx,
            PutRetentionPolicyRequest {
                log_group_name: name.into(),
                retention_in_days: days,
            },
        )
    };
    for bad in [0, 2, 4000, -1] {
        assert_eq!(code(put(bad, "g").await), "InvalidParameterException");
    }
    assert_eq!(code(put(7, "nope").await), "ResourceNotFoundException");
    put(3653, "g").await.unwrap();
    put(7, "g").await.unwrap();
    let g = h.groups(DescribeLogGroupsRequest::default()).await;
    assert_eq!(g.log_groups.unwrap()[0].retention_in_days, Some(7));
    h.logs
        .delete_retention_policy(
            &h.ctx,
            DeleteRetentionPolicyRequest {
                log_group_name: "g".into(),
            },
        )
        .await
        .unwrap();
    let g = h.groups(DescribeLogGroupsRequest::default()).await;
    assert_eq!(g.log_groups.unwrap()[0].retention_in_days, None);
}

#[tokio::test]
async fn tags_through_both_apis() {
    let h = harness();
    h.logs
        .create_log_group(
            &h.ctx,
            CreateLogGroupRequest {
                log_group_name: "g".into(),
                tags: Some(BTreeMap::from([("team".into(), "core".into())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let arn = "arn:aws:logs:us-east-1:123456789012:log-group:g";
    h.logs
        .tag_resource(
            &h.ctx,
            TagResourceRequest {
                resource_arn: arn.into(),
                tags: BTreeMap::from([("env".into(), "prod".into())]),
            },
        )
        .await
        .unwrap();
    h.logs
        .tag_log_group(
            &h.ctx,
            TagLogGroupRequest {
                log_group_name: "g".into(),
                tags: BTreeMap::from([("team".into(), "web".into())]),
            },
        )
        .await
        .unwrap();
    let listed = h
        .logs
        .list_tags_for_resource(
            &h.ctx,
            ListTagsForResourceRequest {
                resource_arn: arn.into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        listed.tags.unwrap(),
        BTreeMap::from([
            ("env".to_string(), "prod".to_string()),
            ("team".to_string(), "web".to_string())
        ])
    );
    h.logs
        .untag_resource(
            &h.ctx,
            UntagResourceRequest {
                resource_arn: format!("{arn}:*"),
                tag_keys: vec!["env".into()],
            },
        )
        .await
        .unwrap();
    h.logs
        .untag_log_group(
            &h.ctx,
            UntagLogGroupRequest {
                log_group_name: "g".into(),
                tags: vec!["team".into(), "absent".into()],
            },
        )
        .await
        .unwrap();
    let listed = h
        .logs
        .list_tags_log_group(
            &h.ctx,
            ListTagsLogGroupRequest {
                log_group_name: "g".into(),
            },
        )
        .await
        .unwrap();
    // No tags: absent, as the model's `Tags` map has at least one entry.
    assert_eq!(listed.tags, None);

    let many: BTreeMap<String, String> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
    let r = h
        .logs
        .tag_resource(
            &h.ctx,
            TagResourceRequest {
                resource_arn: arn.into(),
                tags: many.clone(),
            },
        )
        .await;
    assert_eq!(code(r), "TooManyTagsException");
    let r = h
        .logs
        .tag_log_group(
            &h.ctx,
            TagLogGroupRequest {
                log_group_name: "g".into(),
                tags: many,
            },
        )
        .await;
    assert_eq!(code(r), "InvalidParameterException");
    for (resource_arn, expected) in [
        (
            "arn:aws:logs:us-east-1:123456789012:log-group:nope",
            "ResourceNotFoundException",
        ),
        (
            "arn:aws:logs:us-east-1:999999999999:log-group:g",
            "ResourceNotFoundException",
        ),
        (
            "arn:aws:ecs:us-east-1:123456789012:cluster/x",
            "InvalidParameterException",
        ),
        ("not-an-arn", "InvalidParameterException"),
    ] {
        let r = h
            .logs
            .tag_resource(
                &h.ctx,
                TagResourceRequest {
                    resource_arn: resource_arn.into(),
                    tags: BTreeMap::from([("k".into(), "v".into())]),
                },
            )
            .await;
        assert_eq!(code(r), expected, "{resource_arn}");
    }
    let r = h
        .logs
        .tag_log_group(
            &h.ctx,
            TagLogGroupRequest {
                log_group_name: "g".into(),
                tags: BTreeMap::from([("aws:reserved".into(), "v".into())]),
            },
        )
        .await;
    assert_eq!(code(r), "InvalidParameterException");
}

#[tokio::test]
async fn log_streams_lifecycle_and_listing() {
    let h = harness();
    h.group("g").await;
    let create = |group: &str, stream: &str| {
        h.logs.create_log_stream(
            &h.ctx,
            CreateLogStreamRequest {
                log_group_name: group.into(),
                log_stream_name: stream.into(),
            },
        )
    };
    for s in ["web/1", "web/2", "db/1"] {
        create("g", s).await.unwrap();
    }
    assert_eq!(
        code(create("g", "web/1").await),
        "ResourceAlreadyExistsException"
    );
    assert_eq!(code(create("nope", "s").await), "ResourceNotFoundException");
    for bad in ["a:b", "a*", ""] {
        assert_eq!(code(create("g", bad).await), "InvalidParameterException");
    }
    let t = now();
    h.put("g", "db/1", events(t - 10, 1)).await.unwrap();
    h.put("g", "web/1", events(t - 5, 2)).await.unwrap();

    let describe = |req: DescribeLogStreamsRequest| h.logs.describe_log_streams(&h.ctx, req);
    let names = |r: &DescribeLogStreamsResponse| -> Vec<String> {
        r.log_streams
            .iter()
            .flatten()
            .map(|s| s.log_stream_name.clone().unwrap())
            .collect()
    };
    let all = describe(DescribeLogStreamsRequest {
        log_group_name: Some("g".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&all), ["db/1", "web/1", "web/2"]);
    let web1 = &all.log_streams.as_ref().unwrap()[1];
    assert_eq!(
        web1.arn.as_deref(),
        Some("arn:aws:logs:us-east-1:123456789012:log-group:g:log-stream:web/1")
    );
    assert_eq!(web1.first_event_timestamp, Some(t - 5));
    assert_eq!(web1.last_event_timestamp, Some(t - 4));
    assert!(web1.last_ingestion_time.unwrap() >= t);
    assert_eq!(web1.stored_bytes, Some(0));
    let web2 = &all.log_streams.as_ref().unwrap()[2];
    assert_eq!(web2.last_event_timestamp, None);

    let by_time = describe(DescribeLogStreamsRequest {
        log_group_identifier: Some("arn:aws:logs:us-east-1:123456789012:log-group:g:*".into()),
        order_by: Some(OrderBy::LastEventTime),
        descending: Some(true),
        limit: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&by_time), ["web/1", "db/1"]);
    let rest = describe(DescribeLogStreamsRequest {
        log_group_name: Some("g".into()),
        order_by: Some(OrderBy::LastEventTime),
        descending: Some(true),
        limit: Some(2),
        next_token: by_time.next_token,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&rest), ["web/2"]);
    assert!(rest.next_token.is_none());

    let prefixed = describe(DescribeLogStreamsRequest {
        log_group_name: Some("g".into()),
        log_stream_name_prefix: Some("web/".into()),
        descending: Some(true),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&prefixed), ["web/2", "web/1"]);

    for (req, expected) in [
        (
            DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                log_stream_name_prefix: Some("web".into()),
                order_by: Some(OrderBy::LastEventTime),
                ..Default::default()
            },
            "InvalidParameterException",
        ),
        (
            DescribeLogStreamsRequest::default(),
            "InvalidParameterException",
        ),
        (
            DescribeLogStreamsRequest {
                log_group_name: Some("nope".into()),
                ..Default::default()
            },
            "ResourceNotFoundException",
        ),
        (
            DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                next_token: Some("bogus".into()),
                ..Default::default()
            },
            "InvalidParameterException",
        ),
    ] {
        assert_eq!(code(describe(req).await), expected);
    }

    let delete = |stream: &str| {
        h.logs.delete_log_stream(
            &h.ctx,
            DeleteLogStreamRequest {
                log_group_name: "g".into(),
                log_stream_name: stream.into(),
            },
        )
    };
    delete("web/1").await.unwrap();
    assert_eq!(code(delete("web/1").await), "ResourceNotFoundException");
    assert_eq!(
        code(h.put("g", "web/1", events(t, 1)).await),
        "ResourceNotFoundException"
    );
    // Recreated, it is empty.
    create("g", "web/1").await.unwrap();
    let got = h.get(get_req("g", "web/1")).await.unwrap();
    assert!(got.events.unwrap().is_empty());
}

#[tokio::test]
async fn put_log_events_validates_and_rejects_by_age() {
    let h = harness();
    h.group("g").await;
    h.stream("g", "s").await;
    let t = now();
    let r = h.put("g", "s", events(t, 3)).await.unwrap();
    assert_eq!(
        r.next_sequence_token.as_deref(),
        Some("00000000000000000000000000000000000000000000000000000003")
    );
    assert!(r.rejected_log_events_info.is_none());

    let mut unordered = events(t, 2);
    unordered.reverse();
    assert_eq!(
        code(h.put("g", "s", unordered).await),
        "InvalidParameterException"
    );
    assert_eq!(
        code(h.put("g", "s", vec![]).await),
        "InvalidParameterException"
    );
    let too_big = vec![InputLogEvent {
        timestamp: t,
        message: "x".repeat(1_048_576),
    }];
    assert_eq!(
        code(h.put("g", "s", too_big).await),
        "InvalidParameterException"
    );
    assert_eq!(
        code(h.put("nope", "s", events(t, 1)).await),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(h.put("g", "nope", events(t, 1)).await),
        "ResourceNotFoundException"
    );

    let mixed = vec![
        InputLogEvent {
            timestamp: t - 15 * DAY,
            message: "ancient".into(),
        },
        InputLogEvent {
            timestamp: t - 1,
            message: "fine".into(),
        },
        InputLogEvent {
            timestamp: t + 3 * 3_600_000,
            message: "future".into(),
        },
    ];
    let r = h.put("g", "s", mixed).await.unwrap();
    let info = r.rejected_log_events_info.unwrap();
    assert_eq!(info.too_old_log_event_end_index, Some(0));
    assert_eq!(info.too_new_log_event_start_index, Some(2));
    assert_eq!(info.expired_log_event_end_index, None);
    let all = h
        .get(GetLogEventsRequest {
            start_from_head: Some(true),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    // Ordered by timestamp, not by arrival.
    assert_eq!(
        messages(&all.events),
        ["fine", "event 0", "event 1", "event 2"]
    );
    // A batch spanning more than a day fails as a whole.
    let wide = vec![
        InputLogEvent {
            timestamp: t - 2 * DAY,
            message: "a".into(),
        },
        InputLogEvent {
            timestamp: t,
            message: "b".into(),
        },
    ];
    assert_eq!(
        code(h.put("g", "s", wide).await),
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn get_log_events_pages_forward_and_backward() {
    let h = harness();
    h.group("g").await;
    h.stream("g", "s").await;
    let base = now() - 60_000;
    // 5,000 events in five batches of 1,000 (each one transaction).
    for b in 0..5 {
        let batch = (0..1000)
            .map(|i| InputLogEvent {
                timestamp: base + b * 1000 + i,
                message: format!("{:05}", b * 1000 + i),
            })
            .collect();
        h.put("g", "s", batch).await.unwrap();
    }
    let expected: Vec<String> = (0..5000).map(|i| format!("{i:05}")).collect();

    // Forward from the head until the token repeats.
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = h
            .get(GetLogEventsRequest {
                start_from_head: Some(true),
                limit: Some(777),
                next_token: token.clone(),
                ..get_req("g", "s")
            })
            .await
            .unwrap();
        pages += 1;
        let next = page.next_forward_token.clone().unwrap();
        assert!(next.starts_with("f/") && next.len() == 58, "{next}");
        assert!(page.next_backward_token.unwrap().starts_with("b/"));
        got.extend(messages(&page.events));
        if token.as_deref() == Some(next.as_str()) {
            assert!(page.events.unwrap().is_empty());
            break;
        }
        token = Some(next);
    }
    assert_eq!(got, expected);
    assert_eq!(pages, 5000 / 777 + 2);

    // New events show up behind the repeated token.
    h.put("g", "s", events(base + 10_000, 2)).await.unwrap();
    let tail = h
        .get(GetLogEventsRequest {
            start_from_head: Some(true),
            next_token: token.clone(),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    assert_eq!(messages(&tail.events), ["event 0", "event 1"]);

    // Without a token, startFromHead=false gives the last `limit` events, oldest first.
    let last = h
        .get(GetLogEventsRequest {
            limit: Some(3),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    assert_eq!(messages(&last.events), ["04999", "event 0", "event 1"]);

    // Backward from there until the token repeats.
    let mut back = messages(&last.events);
    let mut token = last.next_backward_token.unwrap();
    loop {
        let page = h
            .get(GetLogEventsRequest {
                limit: Some(1000),
                next_token: Some(token.clone()),
                ..get_req("g", "s")
            })
            .await
            .unwrap();
        let next = page.next_backward_token.unwrap();
        let mut msgs = messages(&page.events);
        msgs.extend(back);
        back = msgs;
        if next == token {
            break;
        }
        token = next;
    }
    assert_eq!(back.len(), 5002);
    assert_eq!(back[..5000], expected[..]);

    // At the head, the forward token of an empty backward page starts at the first event.
    let head = h
        .get(GetLogEventsRequest {
            next_token: Some(token),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    assert!(head.events.unwrap().is_empty());
    let first = h
        .get(GetLogEventsRequest {
            limit: Some(2),
            next_token: head.next_forward_token,
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    assert_eq!(messages(&first.events), ["00000", "00001"]);
}

#[tokio::test]
async fn get_log_events_time_windows_and_bad_tokens() {
    let h = harness();
    h.group("g").await;
    h.stream("g", "s").await;
    h.stream("g", "other").await;
    let base = now() - 60_000;
    h.put("g", "s", events(base, 10)).await.unwrap();
    let window = h
        .get(GetLogEventsRequest {
            start_time: Some(base + 2),
            end_time: Some(base + 5),
            start_from_head: Some(true),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    // startTime inclusive, endTime exclusive.
    assert_eq!(messages(&window.events), ["event 2", "event 3", "event 4"]);
    // Paging on inside the window stops at its end.
    let after = h
        .get(GetLogEventsRequest {
            start_time: Some(base + 2),
            end_time: Some(base + 5),
            next_token: window.next_forward_token.clone(),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    assert!(after.events.unwrap().is_empty());
    assert_eq!(after.next_forward_token, window.next_forward_token);

    let token = window.next_forward_token.unwrap();
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for bad in ["garbage", "f/123", forged.as_str()] {
        let r = h
            .get(GetLogEventsRequest {
                next_token: Some(bad.into()),
                ..get_req("g", "s")
            })
            .await;
        assert_eq!(code(r), "InvalidParameterException", "{bad}");
    }
    // A token of one stream is not one of another.
    let r = h
        .get(GetLogEventsRequest {
            next_token: Some(token),
            ..get_req("g", "other")
        })
        .await;
    assert_eq!(code(r), "InvalidParameterException");
    for (req, expected) in [
        (get_req("nope", "s"), "ResourceNotFoundException"),
        (get_req("g", "nope"), "ResourceNotFoundException"),
        (
            GetLogEventsRequest {
                limit: Some(10_001),
                ..get_req("g", "s")
            },
            "InvalidParameterException",
        ),
        (
            GetLogEventsRequest {
                log_group_identifier: Some("g".into()),
                ..get_req("g", "s")
            },
            "InvalidParameterException",
        ),
    ] {
        assert_eq!(code(h.get(req).await), expected);
    }
    // logGroupIdentifier works alone, as a name or an ARN.
    for id in ["g", "arn:aws:logs:us-east-1:123456789012:log-group:g:*"] {
        let r = h
            .get(GetLogEventsRequest {
                log_group_name: None,
                log_group_identifier: Some(id.into()),
                ..get_req("g", "s")
            })
            .await
            .unwrap();
        assert_eq!(r.events.unwrap().len(), 10);
    }
}

#[tokio::test]
async fn get_log_events_caps_responses_at_one_megabyte() {
    let h = harness();
    h.group("g").await;
    h.stream("g", "s").await;
    let t = now() - 60_000;
    for b in 0..3 {
        let batch = (0..10)
            .map(|i| InputLogEvent {
                timestamp: t + b * 10 + i,
                message: "x".repeat(100_000),
            })
            .collect();
        h.put("g", "s", batch).await.unwrap();
    }
    let page = h
        .get(GetLogEventsRequest {
            start_from_head: Some(true),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    assert_eq!(page.events.unwrap().len(), 10);
    let next = h
        .get(GetLogEventsRequest {
            next_token: page.next_forward_token,
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    assert_eq!(next.events.unwrap()[0].timestamp, Some(t + 10));
}

#[tokio::test]
async fn filter_log_events_across_streams() {
    let h = harness();
    h.group("g").await;
    for s in ["web/1", "web/2", "db/1"] {
        h.stream("g", s).await;
    }
    let t = now() - 60_000;
    let put = |stream: &'static str, ts: i64, msg: &'static str| {
        h.put(
            "g",
            stream,
            vec![InputLogEvent {
                timestamp: ts,
                message: msg.into(),
            }],
        )
    };
    put("web/1", t + 1, "GET /orders 200").await.unwrap();
    put("db/1", t + 2, "ERROR deadlock detected").await.unwrap();
    put("web/2", t + 3, "ERROR GET /orders 500").await.unwrap();
    put("web/1", t + 4, "WARN slow GET /health").await.unwrap();

    let h = &h;
    let run = |req: FilterLogEventsRequest| async move {
        h.filter(FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            ..req
        })
        .await
        .unwrap()
    };
    let msgs = |r: &FilterLogEventsResponse| -> Vec<String> {
        r.events
            .iter()
            .flatten()
            .map(|e| e.message.clone().unwrap())
            .collect()
    };
    let all = run(FilterLogEventsRequest::default()).await;
    assert_eq!(msgs(&all).len(), 4);
    let e = &all.events.as_ref().unwrap()[1];
    assert_eq!(e.log_stream_name.as_deref(), Some("db/1"));
    assert_eq!(e.timestamp, Some(t + 2));
    assert_eq!(e.event_id.as_ref().unwrap().len(), 56);
    assert!(e.ingestion_time.is_some());
    assert!(all.next_token.is_none());

    let errors = run(FilterLogEventsRequest {
        filter_pattern: Some("ERROR".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        msgs(&errors),
        ["ERROR deadlock detected", "ERROR GET /orders 500"]
    );
    let phrase = run(FilterLogEventsRequest {
        filter_pattern: Some("\"GET /orders\" -ERROR".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(msgs(&phrase), ["GET /orders 200"]);
    let prefix = run(FilterLogEventsRequest {
        log_stream_name_prefix: Some("web/".into()),
        filter_pattern: Some("GET".into()),
        start_time: Some(t + 2),
        end_time: Some(t + 4),
        ..Default::default()
    })
    .await;
    // endTime is inclusive here.
    assert_eq!(
        msgs(&prefix),
        ["ERROR GET /orders 500", "WARN slow GET /health"]
    );
    let named = run(FilterLogEventsRequest {
        log_stream_names: Some(vec!["db/1".into(), "web/2".into()]),
        ..Default::default()
    })
    .await;
    assert_eq!(msgs(&named).len(), 2);

    // Paging one event at a time.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = run(FilterLogEventsRequest {
            limit: Some(1),
            next_token: token,
            ..Default::default()
        })
        .await;
        seen.extend(msgs(&page));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, msgs(&all));

    for req in [
        FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            log_stream_names: Some(vec!["a".into()]),
            log_stream_name_prefix: Some("a".into()),
            ..Default::default()
        },
        FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            filter_pattern: Some("{ $.level = \"error\" }".into()),
            ..Default::default()
        },
        FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            next_token: Some("nope".into()),
            ..Default::default()
        },
        FilterLogEventsRequest::default(),
    ] {
        assert_eq!(code(h.filter(req).await), "InvalidParameterException");
    }
    let missing = h
        .filter(FilterLogEventsRequest {
            log_group_name: Some("nope".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(code(missing), "ResourceNotFoundException");
}

#[tokio::test]
async fn retention_hides_then_sweeps_old_events() {
    let h = harness();
    h.group("g").await;
    h.stream("g", "s").await;
    let t = now();
    // Accepted while the group keeps everything...
    h.put("g", "s", events(t - 3 * DAY, 2)).await.unwrap();
    h.put("g", "s", events(t - 1000, 1)).await.unwrap();
    assert_eq!(h.stored_bytes().await, 21);
    // ...then a 1-day retention expires the two old ones.
    h.logs
        .put_retention_policy(
            &h.ctx,
            PutRetentionPolicyRequest {
                log_group_name: "g".into(),
                retention_in_days: 1,
            },
        )
        .await
        .unwrap();
    let got = h
        .get(GetLogEventsRequest {
            start_from_head: Some(true),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    assert_eq!(messages(&got.events), ["event 0"]);
    let filtered = h
        .filter(FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.events.unwrap().len(), 1);
    // PutRetentionPolicy pruned them already; the sweep finds nothing left.
    assert_eq!(h.stored_bytes().await, 7);
    assert_eq!(h.logs.sweep_expired().await.unwrap(), 0);
    // Events older than the retention are now rejected as expired.
    let r = h.put("g", "s", events(t - 2 * DAY, 1)).await.unwrap();
    let info = r.rejected_log_events_info.unwrap();
    assert_eq!(info.expired_log_event_end_index, Some(0));
    assert_eq!(info.too_old_log_event_end_index, None);
}

#[tokio::test]
async fn the_sweep_deletes_what_expired_since_and_orphaned_streams() {
    let h = harness();
    h.group("g").await;
    h.stream("g", "s").await;
    h.logs
        .put_retention_policy(
            &h.ctx,
            PutRetentionPolicyRequest {
                log_group_name: "g".into(),
                retention_in_days: 1,
            },
        )
        .await
        .unwrap();
    // Events that expired after they were stored (planted: the API would
    // refuse them now), and streams of a group whose document is gone.
    let scope = Scope::new("123456789012", "us-east-1");
    let old = |ts: i64| NewEvent {
        timestamp: ts,
        message: "old".into(),
    };
    let t = now();
    let planted = vec![old(t - 3 * DAY), old(t - 2 * DAY), old(t - 1000)];
    h.store.append(&scope, "g", "s", planted, t).await.unwrap();
    h.store.create_stream(&scope, "gone", "s", t).await.unwrap();
    assert_eq!(h.logs.sweep_expired().await.unwrap(), 2);
    assert_eq!(h.stored_bytes().await, 3);
    assert!(h.store.stream(&scope, "gone", "s").await.unwrap().is_none());
    assert_eq!(h.logs.sweep_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn deleting_a_group_takes_its_streams_and_events() {
    let h = harness();
    h.group("g").await;
    h.stream("g", "s").await;
    h.put("g", "s", events(now(), 5)).await.unwrap();
    h.logs
        .delete_log_group(
            &h.ctx,
            DeleteLogGroupRequest {
                log_group_name: "g".into(),
            },
        )
        .await
        .unwrap();
    h.group("g").await;
    assert_eq!(
        code(h.get(get_req("g", "s")).await),
        "ResourceNotFoundException"
    );
    h.stream("g", "s").await;
    assert!(h
        .get(get_req("g", "s"))
        .await
        .unwrap()
        .events
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_to_one_stream_all_land() {
    let h = harness();
    h.group("g").await;
    h.stream("g", "s").await;
    let t = now() - 60_000;
    let mut tasks = Vec::new();
    for w in 0..20 {
        let (logs, ctx) = (h.logs.clone(), h.ctx.clone());
        tasks.push(tokio::spawn(async move {
            for b in 0..5 {
                let batch = (0..50)
                    .map(|i| InputLogEvent {
                        timestamp: t + i,
                        message: format!("w{w} b{b} e{i}"),
                    })
                    .collect();
                logs.put_log_events(
                    &ctx,
                    PutLogEventsRequest {
                        log_group_name: "g".into(),
                        log_stream_name: "s".into(),
                        log_events: batch,
                        sequence_token: Some("ignored".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = h
        .get(GetLogEventsRequest {
            start_from_head: Some(true),
            ..get_req("g", "s")
        })
        .await
        .unwrap();
    let mut msgs = messages(&got.events);
    assert_eq!(msgs.len(), 5000);
    msgs.sort();
    msgs.dedup();
    assert_eq!(msgs.len(), 5000);
    let stream = h
        .logs
        .describe_log_streams(
            &h.ctx,
            DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        stream.log_streams.unwrap()[0]
            .upload_sequence_token
            .as_deref(),
        Some("00000000000000000000000000000000000000000000000000005000")
    );
}

#[tokio::test]
async fn every_error_is_modeled_for_its_operation() {
    // A sample of failing calls, each checked against the model's error list.
    let h = harness();
    let checks: Vec<(Operation, Result<(), ApiError>)> = vec![
        (
            Operation::ListTagsLogGroup,
            h.logs
                .list_tags_log_group(
                    &h.ctx,
                    ListTagsLogGroupRequest {
                        log_group_name: "bad name".into(),
                    },
                )
                .await
                .map(drop),
        ),
        (
            Operation::UntagLogGroup,
            h.logs
                .untag_log_group(
                    &h.ctx,
                    UntagLogGroupRequest {
                        log_group_name: "nope".into(),
                        tags: vec!["aws:x".into()],
                    },
                )
                .await,
        ),
        (
            Operation::DeleteLogStream,
            h.logs
                .delete_log_stream(
                    &h.ctx,
                    DeleteLogStreamRequest {
                        log_group_name: "nope".into(),
                        log_stream_name: "s".into(),
                    },
                )
                .await,
        ),
        (
            Operation::DescribeLogGroups,
            h.logs
                .describe_log_groups(
                    &h.ctx,
                    DescribeLogGroupsRequest {
                        limit: Some(0),
                        ..Default::default()
                    },
                )
                .await
                .map(drop),
        ),
    ];
    for (op, r) in checks {
        let e = r.unwrap_err();
        assert!(
            modeled_errors(op)
                .iter()
                .any(|(c, s)| *c == e.code && *s == e.status),
            "{op:?} answered {e}"
        );
    }
}
