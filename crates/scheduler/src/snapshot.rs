//! What the scheduler sees of a cluster: each instance's free resources,
//! ports in use and attributes. What a task needs is core's
//! [`Demand`](berth_core::task::Demand).

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
}

impl Instance {
    /// Accounts a placed task against this instance.
    pub fn reserve(&mut self, d: &Demand) {
        self.cpu -= d.cpu;
        self.memory -= d.memory;
        self.ports.extend(d.ports_on(self.awsvpc_shares_host));
        self.tasks += 1;
    }
}
