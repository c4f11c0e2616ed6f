//! What the scheduler sees of a cluster: each instance's free resources,
//! ports in use and attributes. What a task needs is core's
//! [`Demand`](berth_core::task::Demand).

use berth_core::query;
use berth_core::task::{Demand, Protocol};
use std::collections::{BTreeMap, BTreeSet};

/// A container instance as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    /// ACTIVE instances take new tasks; DRAINING ones do not.
    pub active: bool,
    /// Whether its agent is connected.
    pub connected: bool,
    /// Remaining CPU units and MiB of memory.
    pub cpu: i64,
    pub memory: i64,
    /// Host ports already taken (reserved by the agent or by tasks).
    pub ports: BTreeSet<(Protocol, u16)>,
    /// `name → value` (`None` for attributes without a value).
    pub attributes: BTreeMap<String, Option<String>>,
    /// Tasks on it that are not yet stopped (what spread balances).
    pub tasks: u32,
    /// Whether an awsvpc task here uses the host's network (a runtime
    /// without network namespaces), so its ports are host ports.
    pub awsvpc_shares_host: bool,
    /// What the cluster query language can also ask of it.
    pub details: Details,
}

/// An instance's registration details and its tasks' groups, for `memberOf`
/// expressions and ListContainerInstances' `filter`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub agent_version: Option<String>,
    pub ec2_instance_id: Option<String>,
    /// Seconds since the epoch.
    pub registered_at: Option<i64>,
    /// Task group (`service:NAME`, `family:F`, …) → tasks of it not yet stopped.
    pub groups: BTreeMap<String, u32>,
}

impl Instance {
    /// Accounts a placed task (of `group`, if it has one) against this instance.
    pub fn reserve(&mut self, d: &Demand, group: Option<&str>) {
        self.cpu -= d.cpu;
        self.memory -= d.memory;
        self.ports.extend(d.ports_on(self.awsvpc_shares_host));
        self.tasks += 1;
        if let Some(g) = group {
            *self.details.groups.entry(g.to_string()).or_default() += 1;
        }
    }
}

impl query::Facts for Instance {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(|v| v.as_deref())
    }
    fn agent_connected(&self) -> bool {
        self.connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.details.agent_version.as_deref()
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.details.ec2_instance_id.as_deref()
    }
    fn registered_at(&self) -> Option<i64> {
        self.details.registered_at
    }
    fn running_tasks_count(&self) -> u64 {
        u64::from(self.tasks)
    }
    fn task_groups(&self) -> Vec<&str> {
        self.details.groups.keys().map(String::as_str).collect()
    }
}
