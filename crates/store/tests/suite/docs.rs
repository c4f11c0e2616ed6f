//! Documents: versions, atomic batches, ordered and filtered pages.

use crate::fixture::{scope, Fixture};
use berth_store::{Doc, Query, Scope, StoreError, Write};

pub async fn put_get_and_versions(f: &Fixture) {
    let s = f.open().await;
    let doc = Doc::new("cluster", "a", b"{}".to_vec()).with_status("ACTIVE");
    assert_eq!(
        s.commit(&scope(), vec![Write::put_over(doc.clone())])
            .await
            .unwrap(),
        vec![1]
    );
    let got = s.get(&scope(), "cluster", "a").await.unwrap().unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(got.status, "ACTIVE");
    // A second create of the same id conflicts; an update at the read version applies.
    assert!(matches!(
        s.commit(&scope(), vec![Write::put_over(doc.clone())]).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        s.commit(&scope(), vec![Write::put_over(got.clone())])
            .await
            .unwrap(),
        vec![2]
    );
    // A stale version conflicts.
    assert!(s
        .commit(&scope(), vec![Write::put_over(got)])
        .await
        .is_err());
    // Other scopes do not see it.
    assert!(s
        .get(&Scope::new("other", "us-east-1"), "cluster", "a")
        .await
        .unwrap()
        .is_none());
}

pub async fn batches_are_atomic(f: &Fixture) {
    let s = f.open().await;
    let a = Doc::new("k", "a", b"1".to_vec());
    s.commit(&scope(), vec![Write::put_over(a.clone())])
        .await
        .unwrap();
    let b = Doc::new("k", "b", b"2".to_vec());
    let res = s
        .commit(&scope(), vec![Write::put_over(b), Write::put_over(a)])
        .await;
    assert!(res.is_err());
    assert!(
        s.get(&scope(), "k", "b").await.unwrap().is_none(),
        "b must not be written"
    );
}

pub async fn list_filters_orders_and_pages(f: &Fixture) {
    let s = f.open().await;
    let mut writes = Vec::new();
    for fam in ["web", "web-api", "worker"] {
        for rev in 1..=3 {
            writes.push(Write::put_over(
                Doc::new("td", format!("{fam}:{rev}"), vec![])
                    .with_sort(format!("{fam}\t{rev:010}"))
                    .with_parent(fam)
                    .with_status(if rev == 2 { "INACTIVE" } else { "ACTIVE" }),
            ));
        }
    }
    s.commit(&scope(), writes).await.unwrap();
    let ids = |docs: Vec<Doc>| docs.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let all = s
        .list(
            &scope(),
            "td",
            &Query {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(all)[..4], ["web:1", "web:2", "web:3", "web-api:1"]);
    let q = Query {
        sort_prefix: Some("web-".into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        ids(s.list(&scope(), "td", &q).await.unwrap()),
        ["web-api:1", "web-api:2", "web-api:3"]
    );
    let q = Query {
        parent: Some("web".into()),
        status: Some("ACTIVE".into()),
        descending: true,
        limit: 1,
        ..Default::default()
    };
    assert_eq!(ids(s.list(&scope(), "td", &q).await.unwrap()), ["web:3"]);
    let q = Query {
        after: Some("web\t0000000003".into()),
        limit: 2,
        ..Default::default()
    };
    assert_eq!(
        ids(s.list(&scope(), "td", &q).await.unwrap()),
        ["web-api:1", "web-api:2"]
    );
    assert_eq!(
        s.count(&scope(), "td", Some("worker"), Some("ACTIVE"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(s.count(&scope(), "td", None, None).await.unwrap(), 9);
}

pub async fn concurrent_commits_are_grouped_and_all_land(f: &Fixture) {
    let s = f.open().await;
    let mut handles = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.commit(
                &scope(),
                vec![Write::put_over(Doc::new("k", format!("{i:04}"), vec![]))],
            )
            .await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    drop(s);
    let reopened = f.open().await;
    assert_eq!(
        reopened.count(&scope(), "k", None, None).await.unwrap(),
        200
    );
}
