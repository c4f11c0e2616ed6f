//! The recursive-descent parser. Grammar (words case-insensitive):
//!
//! ```text
//! or         := and (("||" | "or") and)*
//! and        := unary (("&&" | "and") unary)*
//! unary      := ("!" | "not") unary | "(" or ")" | comparison
//! comparison := subject op [value | "[" value ("," value)* "]"]
//! ```
//!
//! A value is a bare word (up to whitespace, one of `()[],`, `&&` or `||`), a pattern
//! after `=~`/`!~` (up to whitespace or an unbalanced `)`), or quoted with
//! `'` or `"` (a backslash escapes the quote or a backslash).

use super::{Argument, Comparison, Expr, Op, Pattern, Subject};
use std::fmt;

/// ECS's limit on a placement constraint expression.
pub const MAX_EXPRESSION_LENGTH: usize = 2000;
/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

/// Where and why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Character offset into the expression.
    pub position: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_EXPRESSION_LENGTH {
        return Err(ParseError {
            position: MAX_EXPRESSION_LENGTH,
            message: format!("expression longer than {MAX_EXPRESSION_LENGTH} characters"),
        });
    }
    let mut p = Parser {
        s: chars,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(p.error("empty expression"));
    }
    let e = p.or()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error(format!("unexpected '{}'", p.rest_preview())));
    }
    Ok(e)
}

struct Parser {
    s: Vec<char>,
    pos: usize,
    depth: usize,
}

/// Characters that end a bare word or value.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || "()[],".contains(c)
}

/// Characters that end a subject (operators may follow without a space).
fn ends_subject(c: char) -> bool {
    is_delimiter(c) || "!=<>~'\"".contains(c)
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            position: self.pos,
            message: message.into(),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn rest_preview(&self) -> String {
        self.s[self.pos..].iter().take(20).collect()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, token: &str) -> bool {
        let mut i = self.pos;
        for c in token.chars() {
            match self.s.get(i) {
                Some(have) if have.eq_ignore_ascii_case(&c) => i += 1,
                _ => return false,
            }
        }
        true
    }

    /// Consumes `symbol` if it is next.
    fn eat_symbol(&mut self, symbol: &str) -> bool {
        if self.starts_with(symbol) {
            self.pos += symbol.chars().count();
            true
        } else {
            false
        }
    }

    /// Consumes the word `word` if it is next and ends there.
    fn eat_word(&mut self, word: &str) -> bool {
        let n = word.chars().count();
        let boundary = self.s.get(self.pos + n).is_none_or(|c| ends_subject(*c));
        if self.starts_with(word) && boundary {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("expression nested deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        loop {
            self.skip_ws();
            if self.eat_symbol("||") || self.eat_word("or") {
                let right = self.and()?;
                left = Expr::Or(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            self.skip_ws();
            if self.eat_symbol("&&") || self.eat_word("and") {
                let right = self.unary()?;
                left = Expr::And(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        if self.eat_word("not") || self.eat_symbol("!") {
            return self.nested(|p| Ok(Expr::Not(Box::new(p.unary()?))));
        }
        if self.eat_symbol("(") {
            let e = self.nested(|p| p.or())?;
            self.skip_ws();
            if !self.eat_symbol(")") {
                return Err(self.error("expected ')'"));
            }
            return Ok(e);
        }
        self.comparison().map(Expr::Compare)
    }

    fn comparison(&mut self) -> Result<Comparison, ParseError> {
        let start = self.pos;
        let mut word = String::new();
        while let Some(c) = self.peek().filter(|c| !ends_subject(*c)) {
            word.push(c);
            self.pos += 1;
        }
        if word.is_empty() {
            return Err(self.error("expected a subject such as attribute:NAME"));
        }
        let subject = subject(&word).ok_or_else(|| ParseError {
            position: start,
            message: format!("unknown subject '{word}'"),
        })?;
        self.skip_ws();
        let at_op = self.pos;
        let op = self
            .op()
            .ok_or_else(|| self.error("expected an operator such as == or in"))?;
        if !op.allowed_for(&subject) {
            return Err(ParseError {
                position: at_op,
                message: format!("operator '{}' cannot be used with {word}", op.symbol()),
            });
        }
        let argument = match op {
            Op::Exists | Op::NotExists => Argument::None,
            Op::In | Op::NotIn => Argument::List(self.list()?),
            Op::Matches | Op::NotMatches => {
                self.skip_ws();
                let at = self.pos;
                let source = self.value(true)?;
                let pattern = Pattern::new(source).map_err(|m| ParseError {
                    position: at,
                    message: m,
                })?;
                Argument::Pattern(pattern)
            }
            _ => {
                self.skip_ws();
                let at = self.pos;
                let v = self.value(false)?;
                check_value(&subject, &v).map_err(|m| ParseError {
                    position: at,
                    message: m,
                })?;
                Argument::Value(v)
            }
        };
        Ok(Comparison {
            subject,
            op,
            argument,
        })
    }

    fn op(&mut self) -> Option<Op> {
        // Longest symbols first; `!in`/`!exists` before `!=`/`!~`.
        let symbols = [
            ("!exists", Op::NotExists),
            ("!in", Op::NotIn),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=~", Op::Matches),
            ("!~", Op::NotMatches),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        for (s, op) in symbols {
            let word_like = s.ends_with(|c: char| c.is_ascii_alphabetic());
            if (word_like && self.eat_word(s)) || (!word_like && self.eat_symbol(s)) {
                return Some(op);
            }
        }
        let words = [
            ("greater_than_equal", Op::Ge),
            ("greater_than", Op::Gt),
            ("less_than_equal", Op::Le),
            ("less_than", Op::Lt),
            ("not_equals", Op::Ne),
            ("equals", Op::Eq),
            ("not_exists", Op::NotExists),
            ("exists", Op::Exists),
            ("not_in", Op::NotIn),
            ("in", Op::In),
            ("not_matches", Op::NotMatches),
            ("matches", Op::Matches),
        ];
        words
            .into_iter()
            .find(|(w, _)| self.eat_word(w))
            .map(|(_, op)| op)
    }

    fn list(&mut self) -> Result<Vec<String>, ParseError> {
        self.skip_ws();
        if !self.eat_symbol("[") {
            return Err(self.error("expected '[' to start a list"));
        }
        let mut items = Vec::new();
        loop {
            items.push(self.value(false)?);
            self.skip_ws();
            if self.eat_symbol(",") {
                continue;
            }
            if self.eat_symbol("]") {
                return Ok(items);
            }
            return Err(self.error("expected ',' or ']'"));
        }
    }

    /// A quoted or bare value; a `pattern` may hold balanced parentheses
    /// and brackets.
    fn value(&mut self, pattern: bool) -> Result<String, ParseError> {
        self.skip_ws();
        if let Some(q) = self.peek().filter(|c| *c == '\'' || *c == '"') {
            let start = self.pos;
            self.pos += 1;
            let mut out = String::new();
            loop {
                match self.peek() {
                    None => {
                        return Err(ParseError {
                            position: start,
                            message: "unterminated quoted value".into(),
                        })
                    }
                    Some(c) if c == q => {
                        self.pos += 1;
                        return Ok(out);
                    }
                    Some('\\') if matches!(self.s.get(self.pos + 1), Some(n) if *n == q || *n == '\\') =>
                    {
                        out.push(self.s[self.pos + 1]);
                        self.pos += 2;
                    }
                    Some(c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
        }
        let mut out = String::new();
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            if pattern {
                match c {
                    _ if c.is_whitespace() => break,
                    '(' | '[' => depth += 1,
                    ')' | ']' if depth == 0 => break,
                    ')' | ']' => depth -= 1,
                    _ => {}
                }
            } else if is_delimiter(c) || self.starts_with("&&") || self.starts_with("||") {
                break;
            }
            out.push(c);
            self.pos += 1;
        }
        if out.is_empty() {
            return Err(self.error("expected a value"));
        }
        Ok(out)
    }
}

fn subject(word: &str) -> Option<Subject> {
    Some(match word {
        "agentConnected" => Subject::AgentConnected,
        "agentVersion" => Subject::AgentVersion,
        "ec2InstanceId" => Subject::Ec2InstanceId,
        "registeredAt" => Subject::RegisteredAt,
        "runningTasksCount" => Subject::RunningTasksCount,
        "task:group" => Subject::TaskGroup,
        "instanceType" => Subject::Attribute("ecs.instance-type".into()),
        _ => {
            let name = word.strip_prefix("attribute:")?;
            if name.is_empty() {
                return None;
            }
            Subject::Attribute(name.to_string())
        }
    })
}

/// Values the subject can be compared with at all.
fn check_value(subject: &Subject, v: &str) -> Result<(), String> {
    match subject {
        Subject::RegisteredAt if super::eval::parse_date(v).is_none() => Err(format!(
            "'{v}' is not a date (2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 or 2018-06-18)"
        )),
        Subject::RunningTasksCount if v.parse::<u64>().is_err() => {
            Err(format!("'{v}' is not a number of tasks"))
        }
        _ => Ok(()),
    }
}
