//! Managed scaling of a capacity provider's hosts, as ECS's cluster auto
//! scaling computes it: the `CapacityProviderReservation` metric
//! (CPR = M / N × 100, M the hosts needed, N the hosts there are), the
//! host count a target-tracking policy at `targetCapacity` asks for, and
//! which hosts a scale-in may take. Pure: the control plane gathers a
//! [`Provider`] from the store and acts on the [`Decision`].
//!
//! - With no task waiting for capacity, M is the number of hosts running
//!   at least one task that is not a daemon's.
//! - With tasks waiting, M = N + a lower bound of the hosts they need
//!   (per group of equal demands, on the largest host there is; the
//!   largest group decides), never less than `minimumScalingStepSize` and
//!   never more than `maximumScalingStepSize` above N.
//! - N = 0: CPR is 100 when M = 0 (nothing to do), 200 when M > 0 (scale
//!   out from zero, by the minimum step).
//! - The desired count is ⌈M × 100 / targetCapacity⌉. Scale-in only takes
//!   hosts without non-daemon tasks (managed termination protection) that
//!   are past their warm-up; hosts asked for and still warming up count as
//!   already there, so a scale-out is not asked for twice.

use std::collections::BTreeMap;

/// A provider's `managedScaling` settings, with ECS's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// 1..=100: the CPR the provider is kept at.
    pub target_capacity: u32,
    pub minimum_scaling_step_size: u32,
    pub maximum_scaling_step_size: u32,
    /// Seconds after a host is asked for or joins during which it neither
    /// counts for another scale-out nor may be scaled in.
    pub instance_warmup_period: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            target_capacity: 100,
            minimum_scaling_step_size: 1,
            maximum_scaling_step_size: 10_000,
            instance_warmup_period: 300,
        }
    }
}

/// One host of the provider as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub id: String,
    /// Running or pending tasks that are not a daemon's.
    pub tasks: u32,
    /// Registered (not remaining) CPU units and MiB.
    pub cpu: i64,
    pub memory: i64,
    /// When it joined, in ms.
    pub registered_at: i64,
}

/// Tasks of equal demand waiting for capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub cpu: i64,
    pub memory: i64,
    pub count: u32,
}

/// Everything a decision reads.
#[derive(Debug, Clone, Default)]
pub struct Provider {
    pub settings: Settings,
    pub hosts: Vec<Host>,
    pub waiting: Vec<Waiting>,
    /// Hosts asked for and not yet joined, still within their warm-up.
    pub launching: u32,
    pub now: i64,
}

/// What managed scaling wants of a provider now.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Hosts needed (M) and hosts there are (N, joined ones only).
    pub needed: u32,
    pub running: u32,
    /// `CapacityProviderReservation`, in percent.
    pub reservation: f64,
    /// Hosts a target-tracking policy at `targetCapacity` asks for:
    /// ⌈M × 100 / target⌉.
    pub desired: u32,
    /// Hosts to add now (0 unless scaling out).
    pub add: u32,
    /// Hosts to remove now: idle, past warm-up, at most the excess.
    pub remove: Vec<String>,
}

/// ECS's `CapacityProviderReservation` for M needed and N running hosts.
pub fn reservation(needed: u32, running: u32) -> f64 {
    match (needed, running) {
        (0, 0) => 100.0,
        (_, 0) => 200.0,
        (m, n) => f64::from(m) * 100.0 / f64::from(n),
    }
}

/// A lower bound of the hosts `waiting` tasks need, each host as large as
/// the largest there is (by CPU, then memory). With no host to measure,
/// one. Groups that fit no host are left out: more hosts of the same
/// kind would not place them either.
pub fn hosts_for(waiting: &[Waiting], hosts: &[Host]) -> u32 {
    if waiting.iter().all(|w| w.count == 0) {
        return 0;
    }
    let Some(big) = hosts.iter().max_by_key(|h| (h.cpu, h.memory)) else {
        return 1;
    };
    let mut groups: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for w in waiting.iter().filter(|w| w.count > 0) {
        *groups.entry((w.cpu, w.memory)).or_default() += u64::from(w.count);
    }
    groups
        .into_iter()
        .filter_map(|((cpu, memory), count)| {
            let per = |have: i64, need: i64| {
                if need <= 0 {
                    u64::MAX
                } else {
                    u64::try_from(have / need).unwrap_or(0)
                }
            };
            let fit = per(big.cpu, cpu).min(per(big.memory, memory));
            (fit > 0).then(|| count.div_ceil(fit.min(count)))
        })
        .max()
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// What managed scaling does with `p` now.
pub fn decide(p: &Provider) -> Decision {
    let s = p.settings;
    let running = p.hosts.len() as u32;
    let busy = p.hosts.iter().filter(|h| h.tasks > 0).count() as u32;
    let lower = hosts_for(&p.waiting, &p.hosts);
    // Validation keeps min <= max; a stored oddity must not panic here.
    let min = s.minimum_scaling_step_size.max(1);
    let max = s.maximum_scaling_step_size.max(min);
    let needed = if lower > 0 {
        running.saturating_add(lower.clamp(min, max))
    } else {
        busy
    };
    let target = s.target_capacity.clamp(1, 100);
    let desired = (u64::from(needed) * 100).div_ceil(u64::from(target)) as u32;
    let have = running.saturating_add(p.launching);
    // One scale-out adds between the step sizes.
    let add = match desired.saturating_sub(have) {
        0 => 0,
        _ if lower == 0 => 0,
        k => k.clamp(min, max),
    };
    let warm = i64::from(s.instance_warmup_period) * 1000;
    let remove = if lower == 0 && p.launching == 0 && desired < running {
        let mut idle: Vec<&Host> = p
            .hosts
            .iter()
            .filter(|h| h.tasks == 0 && p.now.saturating_sub(h.registered_at) >= warm)
            .collect();
        // The longest-idle first is unknowable here; the oldest goes first.
        idle.sort_by(|a, b| (a.registered_at, &a.id).cmp(&(b.registered_at, &b.id)));
        idle.into_iter()
            .take((running - desired) as usize)
            .map(|h| h.id.clone())
            .collect()
    } else {
        Vec::new()
    };
    Decision {
        needed,
        running,
        reservation: reservation(needed, running),
        desired,
        add,
        remove,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(id: &str, tasks: u32) -> Host {
        Host {
            id: id.into(),
            tasks,
            cpu: 1024,
            memory: 2048,
            registered_at: 0,
        }
    }

    fn provider(hosts: Vec<Host>, waiting: Vec<Waiting>) -> Provider {
        Provider {
            settings: Settings {
                instance_warmup_period: 60,
                ..Settings::default()
            },
            hosts,
            waiting,
            launching: 0,
            now: 3_600_000,
        }
    }

    #[test]
    fn reservation_special_cases_of_no_hosts() {
        assert_eq!(reservation(0, 0), 100.0);
        assert_eq!(reservation(3, 0), 200.0);
        assert_eq!(reservation(1, 2), 50.0);
        assert_eq!(reservation(0, 4), 0.0);
    }

    #[test]
    fn scale_out_from_zero_by_the_minimum_step() {
        let w = Waiting {
            cpu: 256,
            memory: 512,
            count: 5,
        };
        let d = decide(&provider(vec![], vec![w]));
        assert_eq!((d.needed, d.running, d.reservation), (1, 0, 200.0));
        assert_eq!((d.desired, d.add), (1, 1));
        let mut p = provider(vec![], vec![w]);
        p.settings.minimum_scaling_step_size = 3;
        assert_eq!(decide(&p).add, 3);
    }

    #[test]
    fn waiting_tasks_need_hosts_by_the_largest_group() {
        // Each host takes 4 of 256/512 (cpu bound) or 1 of 1024/2048.
        let hosts = vec![host("a", 4)];
        let w = vec![
            Waiting {
                cpu: 256,
                memory: 512,
                count: 9,
            },
            Waiting {
                cpu: 1024,
                memory: 2048,
                count: 2,
            },
        ];
        assert_eq!(hosts_for(&w, &hosts), 3);
        let d = decide(&provider(hosts, w));
        assert_eq!((d.needed, d.running, d.add), (4, 1, 3));
        assert_eq!(d.reservation, 400.0);
    }

    #[test]
    fn the_maximum_step_caps_a_scale_out_and_tasks_that_fit_nowhere_are_ignored() {
        let w = vec![Waiting {
            cpu: 1024,
            memory: 1,
            count: 50,
        }];
        let mut p = provider(vec![host("a", 1)], w);
        p.settings.maximum_scaling_step_size = 5;
        assert_eq!(decide(&p).add, 5);
        let huge = vec![Waiting {
            cpu: 4096,
            memory: 1,
            count: 3,
        }];
        let d = decide(&provider(vec![host("a", 1)], huge));
        assert_eq!((d.add, d.needed), (0, 1));
    }

    #[test]
    fn hosts_warming_up_count_as_there() {
        let w = vec![Waiting {
            cpu: 1024,
            memory: 1,
            count: 2,
        }];
        let mut p = provider(vec![host("a", 1)], w);
        p.launching = 2;
        assert_eq!(decide(&p).add, 0);
        p.launching = 1;
        assert_eq!(decide(&p).add, 1);
    }

    #[test]
    fn scale_in_takes_only_idle_hosts_past_warm_up() {
        let mut young = host("young", 0);
        young.registered_at = 3_600_000 - 10_000;
        let p = provider(vec![host("busy", 2), host("idle", 0), young], vec![]);
        let d = decide(&p);
        assert_eq!((d.needed, d.running, d.desired), (1, 3, 1));
        assert_eq!(d.remove, vec!["idle".to_string()]);
        assert_eq!(d.add, 0);
    }

    #[test]
    fn a_lower_target_keeps_spare_hosts() {
        let mut p = provider(vec![host("a", 1), host("b", 0), host("c", 0)], vec![]);
        p.settings.target_capacity = 50;
        let d = decide(&p);
        assert_eq!(d.desired, 2);
        assert_eq!(d.remove.len(), 1);
        // Below target with every host busy: termination protection wins.
        let p = provider(vec![host("a", 1), host("b", 1)], vec![]);
        assert_eq!(decide(&p).remove, Vec::<String>::new());
    }

    #[test]
    fn all_idle_scales_to_zero() {
        let d = decide(&provider(vec![host("a", 0), host("b", 0)], vec![]));
        assert_eq!((d.reservation, d.desired, d.remove.len()), (0.0, 0, 2));
    }

    fn arb_provider() -> impl Strategy<Value = Provider> {
        let hosts = prop::collection::vec((0u32..4, 0i64..10_000, 512i64..4096), 0..12);
        let waiting = prop::collection::vec((0i64..2048, 0i64..4096, 0u32..40), 0..4);
        (hosts, waiting, 1u32..=100, 1u32..5, 1u32..20, 0u32..3).prop_map(
            |(hosts, waiting, target, min, max, launching)| Provider {
                settings: Settings {
                    target_capacity: target,
                    minimum_scaling_step_size: min,
                    maximum_scaling_step_size: max,
                    instance_warmup_period: 60,
                },
                hosts: hosts
                    .into_iter()
                    .enumerate()
                    .map(|(i, (tasks, age, cpu))| Host {
                        id: format!("h{i}"),
                        tasks,
                        cpu,
                        memory: cpu * 2,
                        registered_at: 100_000 - age * 10,
                    })
                    .collect(),
                waiting: waiting
                    .into_iter()
                    .map(|(cpu, memory, count)| Waiting { cpu, memory, count })
                    .collect(),
                launching,
                now: 100_000,
            },
        )
    }

    proptest! {
        #[test]
        fn decisions_keep_ecs_invariants(p in arb_provider()) {
            let d = decide(&p);
            let s = p.settings;
            // Never both ways at once.
            prop_assert!(d.add == 0 || d.remove.is_empty());
            // Busy or warming hosts are never removed; removal only below target.
            for id in &d.remove {
                let h = p.hosts.iter().find(|h| &h.id == id).unwrap();
                prop_assert_eq!(h.tasks, 0);
                prop_assert!(p.now - h.registered_at >= i64::from(s.instance_warmup_period) * 1000);
            }
            if !d.remove.is_empty() {
                prop_assert!(d.reservation < f64::from(s.target_capacity));
                prop_assert!(d.running - d.remove.len() as u32 >= d.desired);
            }
            // A scale-out is within the step sizes above what is there.
            if d.add > 0 {
                prop_assert!(d.reservation > f64::from(s.target_capacity) || d.running == 0);
                prop_assert!(d.add <= s.maximum_scaling_step_size.max(s.minimum_scaling_step_size));
                prop_assert!(d.add >= s.minimum_scaling_step_size.min(s.maximum_scaling_step_size));
            }
            // Tasks wait only when M > N: the metric is above 100.
            if hosts_for(&p.waiting, &p.hosts) > 0 {
                prop_assert!(d.reservation > 100.0);
            } else {
                prop_assert!(d.reservation <= 100.0);
            }
        }
    }
}
