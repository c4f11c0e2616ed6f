//! What the scheduler sees of a cluster: each instance's free resources,
//! ports in use and attributes; and what a task needs.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

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
        self.ports.extend(d.ports_on(self));
        self.tasks += 1;
    }
}

/// What one task needs from an instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    pub cpu: i64,
    pub memory: i64,
    /// Fixed host ports (dynamic ones, host port 0, are not listed).
    pub host_ports: Vec<(Protocol, u16)>,
    /// An awsvpc task's ports, which are host ports only on instances
    /// whose awsvpc tasks share the host's network.
    pub awsvpc_ports: Vec<(Protocol, u16)>,
    /// Attributes the instance must have (`requiresAttributes`), with a
    /// required value or any value.
    pub attributes: Vec<(String, Option<String>)>,
}

impl Demand {
    /// The host ports this task takes on `inst`.
    pub fn ports_on<'a>(&'a self, inst: &Instance) -> impl Iterator<Item = (Protocol, u16)> + 'a {
        let shared = inst.awsvpc_shares_host;
        self.host_ports
            .iter()
            .chain(self.awsvpc_ports.iter().filter(move |_| shared))
            .copied()
    }
}
