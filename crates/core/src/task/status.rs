//! The statuses a task and its containers go through, and the status a
//! task is asked to reach. The wire keeps them as strings; these are their
//! typed forms, ordered so that "forward" is `>`.

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every value, in lifecycle order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The value as on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value a wire string names, if any.
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// A task's `lastStatus`, in lifecycle order. A task only ever moves
    /// forward through them.
    TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
    }
}

wire_enum! {
    /// A container's `lastStatus`, in lifecycle order (forward only).
    ContainerStatus {
        Pending = "PENDING",
        Running = "RUNNING",
        Stopped = "STOPPED",
    }
}

wire_enum! {
    /// A task's `desiredStatus`: what the control plane wants it to become.
    DesiredStatus {
        Running = "RUNNING",
        Stopped = "STOPPED",
    }
}

impl TaskStatus {
    /// Whether a task at `self` may be reported at `next`: forward only
    /// (repeating the current status is harmless and allowed).
    pub fn may_become(self, next: TaskStatus) -> bool {
        next >= self
    }

    /// Statuses that still hold resources on an instance.
    pub fn holds_resources(self) -> bool {
        self != TaskStatus::Stopped
    }

    /// Counted as pending (rather than running) by ECS's task counts.
    pub fn is_pending(self) -> bool {
        self < TaskStatus::Running
    }
}

impl ContainerStatus {
    /// Forward only, as for tasks.
    pub fn may_become(self, next: ContainerStatus) -> bool {
        next >= self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        assert!(TaskStatus::Pending.may_become(TaskStatus::Running));
        assert!(TaskStatus::Running.may_become(TaskStatus::Running));
        assert!(!TaskStatus::Stopped.may_become(TaskStatus::Running));
        assert_eq!(
            TaskStatus::parse("DEPROVISIONING"),
            Some(TaskStatus::Deprovisioning)
        );
        assert!(TaskStatus::ALL.windows(2).all(|w| w[0] < w[1]));
        assert!(ContainerStatus::ALL.windows(2).all(|w| w[0] < w[1]));
        assert!(!ContainerStatus::Stopped.may_become(ContainerStatus::Running));
        assert_eq!(ContainerStatus::parse("running"), None);
        assert_eq!(
            DesiredStatus::parse("STOPPED"),
            Some(DesiredStatus::Stopped)
        );
        assert_eq!(DesiredStatus::Running.to_string(), "RUNNING");
    }
}
