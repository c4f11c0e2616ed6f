//! Evaluating an expression against what a container instance shows.

use super::{Argument, Comparison, Expr, Op, Subject};
use std::cmp::Ordering;

/// What an expression can ask of a container instance.
pub trait Facts {
    /// `None` when the instance has no such attribute; `Some(None)` when it
    /// has one without a value.
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    fn agent_connected(&self) -> bool;
    fn agent_version(&self) -> Option<&str>;
    fn ec2_instance_id(&self) -> Option<&str>;
    /// Seconds since the epoch.
    fn registered_at(&self) -> Option<i64>;
    fn running_tasks_count(&self) -> u64;
    /// The groups of the tasks on the instance (`service:NAME`, `family:F`, …).
    fn task_groups(&self) -> Vec<&str>;
}

impl Expr {
    /// Whether the expression reads only what an instance registered
    /// (attributes, agent version, EC2 id, registration time): not its
    /// agent's connection nor its tasks, so its verdict on an instance
    /// holds until the instance is written again.
    pub fn reads_only_registration(&self) -> bool {
        match self {
            Expr::Compare(c) => !matches!(
                c.subject,
                Subject::AgentConnected | Subject::RunningTasksCount | Subject::TaskGroup
            ),
            Expr::Not(e) => e.reads_only_registration(),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.reads_only_registration() && b.reads_only_registration()
            }
        }
    }

    /// Whether an instance with these facts is a member.
    pub fn matches(&self, f: &dyn Facts) -> bool {
        match self {
            Expr::Compare(c) => c.matches(f),
            Expr::Not(e) => !e.matches(f),
            Expr::And(l, r) => l.matches(f) && r.matches(f),
            Expr::Or(l, r) => l.matches(f) || r.matches(f),
        }
    }
}

impl Comparison {
    fn matches(&self, f: &dyn Facts) -> bool {
        match &self.subject {
            Subject::Attribute(name) => match (self.op, f.attribute(name)) {
                (Op::Exists, found) => found.is_some(),
                (Op::NotExists, found) => found.is_none(),
                (_, found) => self.one_value(found.flatten(), compare_text),
            },
            Subject::AgentConnected => {
                let v = if f.agent_connected() { "true" } else { "false" };
                self.one_value(Some(v), |a, b| {
                    a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase())
                })
            }
            Subject::AgentVersion => self.one_value(f.agent_version(), compare_versions),
            Subject::Ec2InstanceId => self.one_value(f.ec2_instance_id(), |a, b| a.cmp(b)),
            Subject::RegisteredAt => {
                let Some(at) = f.registered_at() else {
                    return self.negative();
                };
                let Argument::Value(v) = &self.argument else {
                    return false;
                };
                let Some(want) = parse_date(v) else {
                    return false;
                };
                ordered(self.op, at.cmp(&want))
            }
            Subject::RunningTasksCount => {
                let Argument::Value(v) = &self.argument else {
                    return false;
                };
                let Ok(want) = v.parse::<u64>() else {
                    return false;
                };
                ordered(self.op, f.running_tasks_count().cmp(&want))
            }
            Subject::TaskGroup => {
                let groups = f.task_groups();
                // `==`, `in`, `=~`: some task's group; their negations: none.
                let positive = Comparison {
                    op: positive_of(self.op),
                    ..self.clone()
                };
                let any = groups
                    .iter()
                    .any(|g| positive.one_value(Some(g), |a, b| a.cmp(b)));
                if positive.op == self.op {
                    any
                } else {
                    !any
                }
            }
        }
    }

    /// Whether a comparison is true of a subject that is absent.
    fn negative(&self) -> bool {
        matches!(self.op, Op::Ne | Op::NotIn | Op::NotMatches | Op::NotExists)
    }

    /// The comparison of one (possibly absent) value.
    fn one_value(&self, have: Option<&str>, cmp: impl Fn(&str, &str) -> Ordering) -> bool {
        let Some(have) = have else {
            return self.negative();
        };
        match (&self.argument, self.op) {
            (Argument::Value(v), op) => ordered(op, cmp(have, v)),
            (Argument::List(items), Op::In) => items.iter().any(|v| cmp(have, v).is_eq()),
            (Argument::List(items), Op::NotIn) => !items.iter().any(|v| cmp(have, v).is_eq()),
            (Argument::Pattern(p), Op::Matches) => p.is_match(have),
            (Argument::Pattern(p), Op::NotMatches) => !p.is_match(have),
            _ => false,
        }
    }
}

fn positive_of(op: Op) -> Op {
    match op {
        Op::Ne => Op::Eq,
        Op::NotIn => Op::In,
        Op::NotMatches => Op::Matches,
        other => other,
    }
}

fn ordered(op: Op, o: Ordering) -> bool {
    match op {
        Op::Eq => o.is_eq(),
        Op::Ne => o.is_ne(),
        Op::Gt => o.is_gt(),
        Op::Ge => o.is_ge(),
        Op::Lt => o.is_lt(),
        Op::Le => o.is_le(),
        _ => false,
    }
}

/// Numbers compare as numbers, anything else as text.
fn compare_text(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// `1.14.5` against `1.9`: part by part, numerically where both are numbers.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<String> {
        s.trim_start_matches('v')
            .split(['.', '-'])
            .map(str::to_string)
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let x = pa.get(i).map(String::as_str).unwrap_or("0");
        let y = pb.get(i).map(String::as_str).unwrap_or("0");
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

/// The date formats ECS accepts for `registeredAt`, as epoch seconds (a
/// date without a time is its midnight UTC; without an offset, UTC).
pub(super) fn parse_date(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    if let Ok(t) = time::PrimitiveDateTime::parse(
        s,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ) {
        return Some(t.assume_utc().unix_timestamp());
    }
    time::Date::parse(s, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}
