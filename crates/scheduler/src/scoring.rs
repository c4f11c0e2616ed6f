//! Ordering feasible instances by the placement strategies.

use crate::{BinpackField, Instance, Strategy};
use rand::rngs::SmallRng;
use rand::Rng;
use std::cmp::Ordering;
use std::collections::HashMap;

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

/// Orders instances by the placement strategies, keeping what that needs
/// (each spread field's value per instance and task count per value) up to
/// date as tasks are placed.
pub struct Scorer<'a> {
    strategies: &'a [Strategy],
    /// Per strategy (None but for spread): each instance's value, as an
    /// index into `counts`, and the tasks per value.
    spread: Vec<Option<Spread>>,
}

struct Spread {
    value_of: Vec<usize>,
    counts: Vec<i64>,
}

impl<'a> Scorer<'a> {
    pub fn new(pool: &[Instance], strategies: &'a [Strategy]) -> Scorer<'a> {
        let spread = strategies
            .iter()
            .map(|s| match s {
                Strategy::Spread(f) => {
                    let mut values: HashMap<&str, usize> = HashMap::new();
                    let mut counts = Vec::new();
                    let value_of = pool
                        .iter()
                        .map(|inst| {
                            let next = values.len();
                            let v = *values.entry(field_value(inst, f)).or_insert(next);
                            if v == counts.len() {
                                counts.push(0);
                            }
                            counts[v] += i64::from(inst.tasks);
                            v
                        })
                        .collect();
                    Some(Spread { value_of, counts })
                }
                _ => None,
            })
            .collect();
        Scorer { strategies, spread }
    }

    /// A task was placed on instance `i`.
    pub fn placed(&mut self, i: usize) {
        for s in self.spread.iter_mut().flatten() {
            s.counts[s.value_of[i]] += 1;
        }
    }

    fn cmp(&self, a: (usize, &Instance), b: (usize, &Instance)) -> Ordering {
        for (s, spread) in self.strategies.iter().zip(&self.spread) {
            let o = match (s, spread) {
                (Strategy::Spread(_), Some(sp)) => {
                    sp.counts[sp.value_of[a.0]].cmp(&sp.counts[sp.value_of[b.0]])
                }
                (Strategy::Binpack(BinpackField::Cpu), _) => a.1.cpu.cmp(&b.1.cpu),
                (Strategy::Binpack(BinpackField::Memory), _) => a.1.memory.cmp(&b.1.memory),
                _ => Ordering::Equal,
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// The best of the `feasible` indexes (`view` gives each instance as it
    /// is now), or `None`.
    ///
    /// Spread prefers the field value with the fewest tasks, binpack the
    /// least remaining resource, random a random one. Ties left after all
    /// strategies fall to a uniformly random choice among them (reservoir
    /// sampling), so no instance is favoured by its position.
    pub fn best<'p>(
        &self,
        feasible: impl Iterator<Item = usize>,
        view: impl Fn(usize) -> &'p Instance,
        rng: &mut SmallRng,
    ) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut ties = 0u64;
        for i in feasible {
            let Some(b) = best else {
                best = Some(i);
                ties = 1;
                continue;
            };
            match self.cmp((i, view(i)), (b, view(b))) {
                Ordering::Less => {
                    best = Some(i);
                    ties = 1;
                }
                Ordering::Equal => {
                    ties += 1;
                    if rng.gen_range(0..ties) == 0 {
                        best = Some(i);
                    }
                }
                Ordering::Greater => {}
            }
        }
        best
    }
}
