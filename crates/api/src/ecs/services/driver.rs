//! The service scheduler's driver: runs a service's reconcile pass when
//! something it watches changes (its own update, one of its tasks, its
//! cluster's instances), when a timer it asked for is due (bake, back-off,
//! grace, protection), and in a periodic resync, in the manner of a
//! kube-rs controller's work queue.
//!
//! A pass: read the service and its tasks; decide (the pure reconciler);
//! commit the service's new state, events and deployment records — on a
//! version conflict nothing has been done yet and the pass simply runs
//! again —; then stop what it decided to stop (idempotent) and launch what
//! it decided to start, each launch committing its tasks together with the
//! service's record of them. So a crash at any point loses no task and
//! starts none twice: what is not in the service's document was never
//! launched.

use super::deployments;
use super::observe;
use super::*;
use crate::ecs::capacity_providers::strategy::{Capacity, Part};
use crate::ecs::tasks::launch::{
    self, lock_placement, place, plan, prepare, snapshot, LaunchSpec, PlacementRequest,
};
use crate::ecs::tasks::{self, TaskOwner};
use crate::records::{self, retry, try_commit, Attempt};
use berth_core::task::Stop;
use berth_scheduler::service::{self as reconciler, Decision, StopWhy};
use berth_store::Query;
use futures::StreamExt;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How often every service is looked at even if nothing woke it (agents
/// that went quiet, say: liveness changes without an event).
const RESYNC: Duration = Duration::from_secs(10);
/// Passes run at once (their commits share the store's group commit).
const CONCURRENCY: usize = 8;

/// A service, wherever it lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub account: String,
    pub region: String,
    /// The service document's id: `cluster/name`.
    pub service: String,
}

/// What one round of passes did.
#[derive(Default)]
struct Round {
    passes: usize,
    tasks: usize,
    /// Time spent in the pure reconciler, summed over passes.
    deciding: Duration,
}

#[derive(Default)]
struct Queue {
    dirty: BTreeSet<Key>,
    /// (when, service): passes asked for by a timer.
    timers: BTreeSet<(i64, Key)>,
}

/// The services waiting for a pass.
#[derive(Default)]
pub struct ServiceScheduler {
    queue: Mutex<Queue>,
    notify: tokio::sync::Notify,
}

impl ServiceScheduler {
    /// Asks for a pass of the service with document id `service`.
    pub fn wake(&self, ctx: &RequestContext, service: &str) {
        self.wake_key(Key {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            service: service.to_string(),
        });
    }

    fn wake_key(&self, key: Key) {
        self.queue.lock().dirty.insert(key);
        self.notify.notify_one();
    }

    fn wake_at(&self, key: Key, at: i64) {
        let mut q = self.queue.lock();
        // One timer per service: the earliest.
        let earlier = q.timers.iter().any(|(t, k)| *k == key && *t <= at);
        if !earlier {
            q.timers.retain(|(_, k)| *k != key);
            q.timers.insert((at, key));
        }
    }

    /// The services woken, and those whose timer is due by `now`.
    fn take_due(&self, now: i64) -> Vec<Key> {
        let mut q = self.queue.lock();
        let due: Vec<(i64, Key)> = q
            .timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .cloned()
            .collect();
        for d in &due {
            q.timers.remove(d);
        }
        let mut keys: BTreeSet<Key> = std::mem::take(&mut q.dirty);
        keys.extend(due.into_iter().map(|(_, k)| k));
        keys.into_iter().collect()
    }

    fn next_timer(&self) -> Option<i64> {
        self.queue.lock().timers.iter().next().map(|(t, _)| *t)
    }
}

impl Ecs {
    /// Runs the service scheduler for as long as the runtime runs.
    pub async fn run_services(self) {
        let mut last_resync: Option<std::time::Instant> = None;
        loop {
            if last_resync.is_none_or(|t| t.elapsed() >= RESYNC) {
                last_resync = Some(std::time::Instant::now());
                if let Err(e) = self.wake_all_services().await {
                    tracing::warn!(error = %e, "listing services for a resync failed");
                }
            }
            let begun = std::time::Instant::now();
            let round = self.reconcile_round().await;
            if round.passes > 0 {
                tracing::debug!(
                    passes = round.passes,
                    tasks = round.tasks,
                    ms = begun.elapsed().as_secs_f64() * 1000.0,
                    deciding_ms = round.deciding.as_secs_f64() * 1000.0,
                    "service round"
                );
                continue;
            }
            let now = self.now().as_millis();
            let until_timer = self
                .services
                .next_timer()
                .map_or(RESYNC, |t| Duration::from_millis((t - now).max(0) as u64));
            let wait = until_timer.min(RESYNC);
            tokio::select! {
                _ = self.services.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One round: a pass of every service that was woken or whose timer is
    /// due. Returns how many ran. (Tests drive the scheduler with it.)
    pub async fn reconcile_services(&self) -> usize {
        self.reconcile_round().await.passes
    }

    async fn reconcile_round(&self) -> Round {
        let due = self.services.take_due(self.now().as_millis());
        let round = Mutex::new(Round {
            passes: due.len(),
            ..Default::default()
        });
        futures::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |key| {
                let round = &round;
                async move {
                    match self.reconcile_service(&key).await {
                        Ok((tasks, deciding)) => {
                            let mut r = round.lock();
                            r.tasks += tasks;
                            r.deciding += deciding;
                        }
                        Err(e) => {
                            tracing::warn!(service = %key.service, error = %e, "service pass failed");
                            // Try again soon, not in a hot loop.
                            let at = self.now().as_millis() + 1000;
                            self.services.wake_at(key, at);
                        }
                    }
                }
            })
            .await;
        round.into_inner()
    }

    /// Asks for a pass of every ACTIVE or DRAINING service.
    pub async fn wake_all_services(&self) -> Result<(), EcsError> {
        let scopes = self
            .store()
            .scopes(kind::SERVICE)
            .await
            .map_err(records::store_error)?;
        for sc in scopes {
            for s in [status::ACTIVE, status::DRAINING] {
                let q = Query {
                    status: Some(s.into()),
                    limit: 1_000_000,
                    ..Default::default()
                };
                for d in records::list::<ServiceDoc>(self.store(), &sc, &q).await? {
                    self.services.wake_key(Key {
                        account: sc.account.clone(),
                        region: sc.region.clone(),
                        service: d.value.id(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Asks for a pass of the services of a cluster (its instances changed).
    pub(crate) async fn wake_services_of_cluster(
        &self,
        ctx: &RequestContext,
        cluster: &str,
    ) -> Result<(), EcsError> {
        // Its services, and its daemons' backing services.
        for parent in [cluster.to_string(), daemons_parent(cluster)] {
            let q = Query {
                parent: Some(parent),
                limit: 1_000_000,
                ..Default::default()
            };
            for d in records::list::<ServiceDoc>(self.store(), &scope(ctx), &q).await? {
                if !d.value.is(status::INACTIVE) {
                    self.services.wake(ctx, &d.value.id());
                }
            }
        }
        Ok(())
    }

    /// One pass of one service; returns how many tasks it looked at and
    /// how long the pure decision took.
    async fn reconcile_service(&self, key: &Key) -> Result<(usize, Duration), EcsError> {
        let ctx = RequestContext::for_account(&key.account, &key.region);
        let Some(doc) = load::<ServiceDoc>(self.store(), &scope(&ctx), &key.service).await? else {
            return Ok((0, Duration::ZERO));
        };
        if doc.value.is(status::INACTIVE) {
            return Ok((0, Duration::ZERO));
        }
        let spec = observe::spec(&doc.value, rand::random(), self.timings.service_task_settle);
        let (observed, _) = observe::observe(self, &ctx, &doc.value, &spec).await?;
        let deciding = std::time::Instant::now();
        let decision = reconciler::reconcile(&spec, &doc.value.state, &observed);
        let deciding = deciding.elapsed();
        let looked_at = (observed.tasks.len(), deciding);
        let Some(next) = self.record_decision(&ctx, &doc, &decision).await? else {
            // Someone else changed the service first: look again.
            self.services.wake_key(key.clone());
            return Ok(looked_at);
        };
        for s in &decision.stop {
            let deployment = next
                .tasks
                .get(&s.task)
                .or_else(|| doc.value.tasks.get(&s.task))
                .cloned()
                .unwrap_or_default();
            let stop = match &s.why {
                StopWhy::Unhealthy => Stop::failed_health_checks(),
                _ => Stop::scaling(&deployment),
            };
            tasks::request_stop(self, &ctx, &next.cluster, &s.task, &stop).await?;
        }
        for start in &decision.start {
            self.start_tasks(&ctx, &key.service, start).await?;
        }
        if let Some(at) = decision.wake_at {
            self.services.wake_at(key.clone(), at);
        }
        Ok(looked_at)
    }

    /// Commits what a pass decided about the service itself: its state,
    /// forgotten tasks, events, status and deployment records. `None` when
    /// the service changed since it was read.
    async fn record_decision(
        &self,
        ctx: &RequestContext,
        doc: &Versioned<ServiceDoc>,
        d: &Decision,
    ) -> Result<Option<ServiceDoc>, EcsError> {
        let now = self.now();
        let mut next = doc.value.clone();
        next.state = d.state.clone();
        for id in &d.forget {
            next.tasks.remove(id);
        }
        if d.drained {
            next.service.status = Some(status::INACTIVE.into());
        }
        if next.daemon() {
            next.service.desired_count = Some(d.desired as i32);
        }
        // A rollback puts the service back on what it ran before.
        let primary = |s: &berth_scheduler::service::State| s.primary().map(|p| p.id.clone());
        if !next.external() && primary(&next.state) != primary(&doc.value.state) {
            if let Some(r) = primary(&next.state).and_then(|id| next.revisions.get(&id)) {
                let r = r.revision.clone();
                next.service.task_definition = r.task_definition;
                next.service.network_configuration = r.network_configuration;
                if r.launch_type.is_some() {
                    next.service.launch_type = r.launch_type;
                }
            }
        }
        for e in &d.events {
            next.say(e.text(&next.name), now);
        }
        if !d.stop.is_empty() {
            let ids: Vec<String> = d
                .stop
                .iter()
                .map(|s| format!("(task {})", s.task))
                .collect();
            let message = format!(
                "(service {}) has stopped {} running tasks: {}.",
                next.name,
                ids.len(),
                ids.join(" ")
            );
            next.say(message, now);
        }
        let records = deployments::follow(self, ctx, &mut next, &d.events).await?;
        let unchanged = records.is_empty()
            && serde_json::to_value(&next).ok() == serde_json::to_value(&doc.value).ok();
        if unchanged {
            return Ok(Some(next));
        }
        let mut writes = vec![Versioned {
            value: next.clone(),
            version: doc.version,
        }
        .write()];
        writes.extend(records);
        // Its Service Action and Deployment State Change events, in the
        // same commit (the outbox).
        // (A daemon's backing service emits no service events.)
        writes.extend(
            d.events
                .iter()
                .filter(|_| next.backs_daemon.is_none())
                .filter_map(|e| {
                    crate::events::outbox::service_event(&scope(ctx), &next.service, e)
                }),
        );
        if try_commit(self.store(), &scope(ctx), writes).await? {
            Ok(Some(next))
        } else {
            Ok(None)
        }
    }

    /// Launches the tasks a pass decided to start, recording them in the
    /// service's document in the same commit.
    async fn start_tasks(
        &self,
        ctx: &RequestContext,
        service: &str,
        start: &reconciler::Start,
    ) -> Result<(), EcsError> {
        let Some(doc) = load::<ServiceDoc>(self.store(), &scope(ctx), service).await? else {
            return Ok(());
        };
        let Some(rev) = doc.value.revisions.get(&start.deployment).cloned() else {
            return Ok(());
        };
        let capacity = match self.capacity_of(ctx, &doc.value, &rev).await {
            Ok(c) => c,
            Err(e) => {
                return self
                    .note_unplaced(ctx, service, &start.deployment, start.count, &e.to_string())
                    .await
            }
        };
        // Each provider of a strategy gets the share that brings the
        // service's live tasks closest to the strategy (ECS's base, then
        // the provider furthest below its weight).
        let running = match &capacity {
            Capacity::Strategy(items) if start.instance.is_none() && items.len() > 1 => {
                self.running_by_provider(ctx, &doc.value).await?
            }
            _ => BTreeMap::new(),
        };
        let parts = capacity.split(start.count, |p| running.get(p).copied().unwrap_or(0));
        for part in parts {
            let start = reconciler::Start {
                count: part.count,
                ..start.clone()
            };
            self.start_part(ctx, service, &start, &doc, &rev, part)
                .await?;
        }
        Ok(())
    }

    /// The service's live tasks (not stopping) on each capacity provider.
    async fn running_by_provider(
        &self,
        ctx: &RequestContext,
        doc: &ServiceDoc,
    ) -> Result<BTreeMap<String, u32>, EcsError> {
        let mut out = BTreeMap::new();
        for id in doc.tasks.keys() {
            let Some(t) = load::<tasks::TaskDoc>(self.store(), &scope(ctx), id).await? else {
                continue;
            };
            let live = t.value.task.desired_status.as_deref() != Some("STOPPED")
                && t.value.task.last_status.as_deref() != Some("STOPPED");
            if let (true, Some(p)) = (live, t.value.task.capacity_provider_name) {
                *out.entry(p).or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    /// What a deployment's tasks run on: its launch type or strategy.
    async fn capacity_of(
        &self,
        ctx: &RequestContext,
        doc: &ServiceDoc,
        rev: &Revision,
    ) -> Result<Capacity, EcsError> {
        let cluster = clusters::load_active(self, ctx, Some(&doc.cluster))
            .await?
            .value;
        Capacity::resolve(
            rev.revision.launch_type.as_ref(),
            rev.revision.capacity_provider_strategy.as_ref(),
            &cluster,
        )
    }

    /// Launches one provider's share of a pass's starts.
    async fn start_part(
        &self,
        ctx: &RequestContext,
        service: &str,
        start: &reconciler::Start,
        doc: &Versioned<ServiceDoc>,
        rev: &Revision,
        part: Part,
    ) -> Result<(), EcsError> {
        let launch = match self
            .prepare_launch(ctx, &doc.value, rev, &start.deployment, part)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                return self
                    .note_unplaced(ctx, service, &start.deployment, start.count, &e.to_string())
                    .await
            }
        };
        let mut request = PlacementRequest::new(
            start.count as usize,
            doc.value
                .service
                .placement_strategy
                .as_deref()
                .filter(|p| !p.is_empty()),
            doc.value.service.placement_constraints.as_deref(),
        )?;
        if let Some(i) = &start.instance {
            request.only = Some(vec![i.clone()]);
        }
        let name = doc.value.name.clone();
        let deployment = start.deployment.clone();
        let _placing = lock_placement(self, ctx, &launch).await;
        let outcome = retry(self.store(), async || {
            let Some(mut d) = load::<ServiceDoc>(self.store(), &scope(ctx), service).await? else {
                return Ok(Attempt::Done(None));
            };
            let wanted = d.value.is(status::ACTIVE)
                && d.value.state.deployments.iter().any(|x| x.id == deployment);
            if !wanted {
                return Ok(Attempt::Done(None));
            }
            let snap = snapshot(self, ctx, &launch, request.only.as_deref()).await?;
            let planned = plan(
                ctx,
                &launch,
                &snap,
                place(&snap, &launch, &request),
                self.now(),
            );
            let now = self.now();
            for t in &planned.tasks {
                d.value.tasks.insert(t.id.clone(), deployment.clone());
            }
            if !planned.tasks.is_empty() {
                let ids: Vec<String> = planned
                    .tasks
                    .iter()
                    .map(|t| format!("(task {})", t.id))
                    .collect();
                let message = format!(
                    "(service {name}) has started {} tasks: {}.",
                    ids.len(),
                    ids.join(" ")
                );
                d.value.say(message, now);
            }
            let unplaced = start.count.saturating_sub(planned.tasks.len() as u32);
            if unplaced > 0 {
                let message = unplaced_message(&name, &planned.failures, &snap);
                d.value.say(message, now);
                for e in reconciler::after_launch(
                    &mut d.value.state,
                    &deployment,
                    unplaced,
                    now.as_millis(),
                ) {
                    d.value.say(e.text(&name), now);
                }
            }
            Ok(planned.commit(ctx, vec![d.write()]).map(Some))
        })
        .await;
        match outcome {
            Ok(Some(launched)) => {
                launched.wake(self);
                Ok(())
            }
            Ok(None) => Ok(()),
            // No instance to look at (none registered, say): the task
            // could not be placed.
            Err(EcsError::InvalidParameter(m)) | Err(EcsError::Client(m)) => {
                self.note_unplaced(ctx, service, &start.deployment, start.count, &m)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// The launch of one task of the deployment, from the service's stored
    /// configuration.
    async fn prepare_launch(
        &self,
        ctx: &RequestContext,
        doc: &ServiceDoc,
        rev: &Revision,
        deployment: &str,
        part: Part,
    ) -> Result<launch::Launch, EcsError> {
        let s = &doc.service;
        let r = &rev.revision;
        let propagate = s
            .propagate_tags
            .clone()
            .filter(|p| *p != PropagateTags::None);
        let mut tags = if propagate == Some(PropagateTags::Service) {
            doc.tags.clone()
        } else {
            Vec::new()
        };
        // A daemon's task runs its daemon task definition revision, in the
        // task group `daemon:NAME`.
        let (definition, group) = match &doc.backs_daemon {
            Some(b) => {
                let arn = r.task_definition.clone().unwrap_or_default();
                tags = crate::ecs::daemons::task_tags(self, ctx, &doc.cluster, &b.daemon).await?;
                (
                    Some(crate::ecs::daemons::launchable(self, ctx, &arn).await?),
                    Some(format!("daemon:{}", b.daemon)),
                )
            }
            None => (None, None),
        };
        let mut l = prepare(
            self,
            ctx,
            LaunchSpec {
                cluster: Some(doc.cluster.clone()),
                task_definition: r.task_definition.clone().unwrap_or_default(),
                launch_type: part.launch_type,
                capacity_provider: part.provider,
                network: r.network_configuration.clone(),
                tags,
                propagate_tags: propagate,
                enable_execute_command: s.enable_execute_command.unwrap_or(false),
                owner: Some(TaskOwner {
                    service_name: doc.name.clone(),
                    deployment_id: deployment.to_string(),
                }),
                // A service keeps running the revision it was given, even
                // once that revision is deregistered, as on ECS.
                allow_inactive: true,
                definition,
                group,
                ..Default::default()
            },
        )
        .await?;
        if s.enable_ecs_managed_tags == Some(true) {
            for (k, v) in [
                ("aws:ecs:serviceName", doc.name.as_str()),
                ("aws:ecs:clusterName", doc.cluster.as_str()),
            ] {
                l.tags.retain(|t| t.key.as_deref() != Some(k));
                l.tags.push(Tag {
                    key: Some(k.into()),
                    value: Some(v.into()),
                });
            }
        }
        Ok(l)
    }

    /// Records a launch that could not run at all (nothing to place on,
    /// a revision that no longer resolves): an event, and failed starts
    /// for the throttle and the circuit breaker.
    async fn note_unplaced(
        &self,
        ctx: &RequestContext,
        service: &str,
        deployment: &str,
        count: u32,
        reason: &str,
    ) -> Result<(), EcsError> {
        let now = self.now();
        retry(self.store(), async || {
            let Some(mut d) = load::<ServiceDoc>(self.store(), &scope(ctx), service).await? else {
                return Ok(Attempt::Done(()));
            };
            let name = d.value.name.clone();
            let message = format!(
                "(service {name}) was unable to place a task because no container instance met all of its requirements. Reason: {} For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
                reason.trim_end_matches('.').to_string() + "."
            );
            d.value.say(message, now);
            for e in reconciler::after_launch(&mut d.value.state, deployment, count, now.as_millis()) {
                d.value.say(e.text(&name), now);
            }
            Ok::<_, EcsError>(Attempt::Commit {
                scope: scope(ctx),
                writes: vec![d.write()],
                value: (),
            })
        })
        .await?;
        // Once the throttle allows, try again.
        let key = Key {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            service: service.to_string(),
        };
        self.services.wake_at(key, now.as_millis() + 1000);
        Ok(())
    }
}

/// ECS's event for tasks that found no place: the closest instance and
/// what it lacked.
fn unplaced_message(service: &str, failures: &[Failure], snap: &launch::Snapshot) -> String {
    let closest = failures.first();
    let why = match closest.and_then(|f| f.reason.as_deref()) {
        Some("RESOURCE:MEMORY") => "has insufficient memory available",
        Some("RESOURCE:CPU") => "has insufficient CPU units available",
        Some("RESOURCE:PORTS") => "is already using a port required by your task",
        Some("ATTRIBUTE") => "is missing an attribute required by your task",
        Some("INACTIVE") => "is not ACTIVE",
        Some("AGENT") => "encountered error \"AGENT\"",
        Some(other) => other,
        None => "could not take the task",
    };
    let instance = closest
        .and_then(|f| f.arn.as_deref())
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .filter(|_| !snap.pool().is_empty())
        .unwrap_or_else(|| "managed capacity".into());
    format!(
        "(service {service}) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance {instance}) {why}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    )
}
