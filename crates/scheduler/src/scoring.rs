//! Ordering feasible instances by the placement strategies.

use crate::{BinpackField, Instance, Strategy};
use rand::rngs::SmallRng;
use rand::Rng;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The value of a spread field on an instance (`instanceId`/`host`, or
/// `attribute:<name>`; an instance without the attribute spreads as "").
fn field_value<'a>(inst: &'a Instance, field: &str) -> &'a str {
    match field {
        "instanceId" | "host" => &inst.id,
        f => {
            let name = f.strip_prefix("attribute:").unwrap_or(f);
            inst.attributes
                .get(name)
                .and_then(|v| v.as_deref())
                .unwrap_or("")
        }
    }
}

/// Picks the best of the `feasible` indexes into `pool`, or `None`.
///
/// Spread prefers the field value with the fewest tasks, binpack the least
/// remaining resource, random a random one. Ties
/// left after all strategies fall to a random choice, so no instance is
/// favoured by its position.
pub fn best(
    pool: &[Instance],
    feasible: &[usize],
    strategies: &[Strategy],
    rng: &mut SmallRng,
) -> Option<usize> {
    if feasible.is_empty() {
        return None;
    }
    // Random tie-breaker per candidate, drawn once so comparisons are consistent.
    let tiebreak: BTreeMap<usize, u64> = feasible.iter().map(|&i| (i, rng.gen())).collect();
    let spread_counts = |field: &str| -> BTreeMap<String, i64> {
        let mut counts = BTreeMap::new();
        for inst in pool {
            *counts
                .entry(field_value(inst, field).to_string())
                .or_insert(0) += i64::from(inst.tasks);
        }
        counts
    };
    let mut order: Vec<usize> = feasible.to_vec();
    let mut spread_cache: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for s in strategies {
        if let Strategy::Spread(f) = s {
            spread_cache
                .entry(f.clone())
                .or_insert_with(|| spread_counts(f));
        }
    }
    order.sort_by(|&a, &b| {
        for s in strategies {
            let o = match s {
                Strategy::Random => Ordering::Equal,
                Strategy::Spread(f) => {
                    let counts = &spread_cache[f];
                    counts[field_value(&pool[a], f)].cmp(&counts[field_value(&pool[b], f)])
                }
                Strategy::Binpack(BinpackField::Cpu) => pool[a].cpu.cmp(&pool[b].cpu),
                Strategy::Binpack(BinpackField::Memory) => pool[a].memory.cmp(&pool[b].memory),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        tiebreak[&a].cmp(&tiebreak[&b])
    });
    order.first().copied()
}
