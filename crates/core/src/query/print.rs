//! The canonical text of an expression: compound expressions fully
//! parenthesised, values quoted unless they are plain words, so that what
//! is printed parses back to the same tree.

use super::{Argument, Comparison, Expr, Subject};
use std::fmt;

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Compare(c) => write!(f, "{c}"),
            Expr::Not(e) => write!(f, "not ({e})"),
            Expr::And(l, r) => write!(f, "({l} and {r})"),
            Expr::Or(l, r) => write!(f, "({l} or {r})"),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::AgentConnected => f.write_str("agentConnected"),
            Subject::AgentVersion => f.write_str("agentVersion"),
            Subject::Attribute(name) => write!(f, "attribute:{name}"),
            Subject::Ec2InstanceId => f.write_str("ec2InstanceId"),
            Subject::RegisteredAt => f.write_str("registeredAt"),
            Subject::RunningTasksCount => f.write_str("runningTasksCount"),
            Subject::TaskGroup => f.write_str("task:group"),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.op.symbol())?;
        match &self.argument {
            Argument::None => Ok(()),
            Argument::Value(v) => write!(f, " {}", quoted(v)),
            Argument::Pattern(p) => write!(f, " {}", quoted(&p.source)),
            Argument::List(items) => {
                let items: Vec<String> = items.iter().map(|v| quoted(v)).collect();
                write!(f, " [{}]", items.join(", "))
            }
        }
    }
}

/// `v` as is when it is a plain word, else in single quotes.
fn quoted(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:-*+/@".contains(c))
        && !matches!(v.to_ascii_lowercase().as_str(), "and" | "or" | "not");
    if plain {
        return v.to_string();
    }
    let mut out = String::from("'");
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}
