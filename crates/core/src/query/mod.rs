//! ECS's cluster query language: the expressions of `memberOf` placement
//! constraints and of ListContainerInstances' `filter`.
//!
//! `subject operator [argument]`, combined with `and`/`&&`, `or`/`||`,
//! `not`/`!` and parentheses. Parsed by a hand-written recursive-descent
//! parser ([`parse`]) into an [`Expr`], printed back in a canonical form
//! ([`Expr`]'s `Display`, which parses to the same tree), and evaluated
//! against what an instance shows ([`Facts`], [`Expr::matches`]).

mod eval;
mod parse;
mod print;

pub use eval::Facts;
pub use parse::{parse, ParseError, MAX_EXPRESSION_LENGTH};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Compare(Comparison),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// One `subject operator [argument]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub subject: Subject,
    pub op: Op,
    pub argument: Argument,
}

/// What a comparison looks at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    AgentConnected,
    AgentVersion,
    /// `attribute:NAME`; `instanceType` is `attribute:ecs.instance-type`.
    Attribute(String),
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    /// `task:group`: the groups of the tasks on the instance.
    TaskGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    /// `exists` and `!exists` take none.
    None,
    Value(String),
    /// `in` and `!in`: `[a, b, …]`.
    List(Vec<String>),
    /// `=~` and `!~`.
    Pattern(Pattern),
}

/// The regular expression of `=~`/`!~` (Java-like syntax, as ECS documents
/// it), matched against the whole value, compiled once when parsed. Its
/// compiled size is bounded, so a hostile pattern cannot cost placement much.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    regex: regex::Regex,
}

impl Pattern {
    pub fn new(source: String) -> Result<Self, String> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(256 * 1024)
            .dfa_size_limit(256 * 1024)
            .build()
            .map_err(|e| {
                let text = e.to_string();
                let last = text.lines().last().unwrap_or_default().trim().to_string();
                format!("invalid pattern '{source}': {last}")
            })?;
        Ok(Pattern { source, regex })
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl Op {
    /// The symbol this operator prints as.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Exists => "exists",
            Op::NotExists => "!exists",
            Op::In => "in",
            Op::NotIn => "!in",
            Op::Matches => "=~",
            Op::NotMatches => "!~",
        }
    }

    /// The operators a subject accepts, as the ECS developer guide lists them.
    fn allowed_for(self, subject: &Subject) -> bool {
        use Op::*;
        let ordering = matches!(self, Eq | Ne | Gt | Ge | Lt | Le);
        let set = matches!(self, Eq | Ne | In | NotIn | Matches | NotMatches);
        match subject {
            Subject::Attribute(_) => true,
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => ordering,
            Subject::AgentConnected | Subject::Ec2InstanceId | Subject::TaskGroup => set,
        }
    }
}

#[cfg(test)]
mod tests;
