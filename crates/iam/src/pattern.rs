//! IAM wildcards: `*` matches any run of characters (none included), `?`
//! exactly one. In a resource ARN a wildcard stays within the component it
//! is written in (partition, service, region, account), except in the
//! resource part, which may itself hold `:` and `/` — and a pattern that is
//! just `*` matches everything.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(p: &str) -> Pattern {
        Pattern(p.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Actions: `ecs:Describe*` matches `ecs:DescribeTasks`, any case.
    pub fn matches_ignore_case(&self, value: &str) -> bool {
        glob(
            &self.0.to_ascii_lowercase().chars().collect::<Vec<_>>(),
            &value.to_ascii_lowercase().chars().collect::<Vec<_>>(),
        )
    }

    /// Resources: component by component for the ARN's first five parts,
    /// the rest (the resource) as one.
    pub fn matches_arn(&self, arn: &str) -> bool {
        if self.0 == "*" {
            return true;
        }
        let p: Vec<&str> = self.0.splitn(6, ':').collect();
        let v: Vec<&str> = arn.splitn(6, ':').collect();
        if p.len() != v.len() {
            // A pattern whose resource part is a bare wildcard may cover a
            // resource written without one of the separators.
            return p.len() == 6 && v.len() == 6 && glob_str(&self.0, arn);
        }
        p.iter().zip(&v).all(|(p, v)| glob_str(p, v))
    }
}

fn glob_str(p: &str, v: &str) -> bool {
    glob(
        &p.chars().collect::<Vec<_>>(),
        &v.chars().collect::<Vec<_>>(),
    )
}

/// Iterative wildcard match with backtracking to the last `*`: linear in
/// practice, never exponential.
fn glob(p: &[char], v: &[char]) -> bool {
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(glob_str("*", ""));
        assert!(glob_str("a*c", "abbbc"));
        assert!(glob_str("a?c", "abc"));
        assert!(!glob_str("a?c", "ac"));
        assert!(!glob_str("a*d", "abc"));
        // Many stars against a long value: linear, not exponential.
        assert!(glob_str(
            "*a*a*a*a*a*b",
            &format!("{}b", "a".repeat(10_000))
        ));
        assert!(!glob_str(
            "*a*a*a*a*a*c",
            &format!("{}b", "a".repeat(10_000))
        ));
    }

    #[test]
    fn actions_ignore_case() {
        let p = Pattern::new("ecs:Describe*");
        assert!(p.matches_ignore_case("ecs:DescribeTasks"));
        assert!(p.matches_ignore_case("ECS:describeclusters"));
        assert!(!p.matches_ignore_case("ecs:RunTask"));
        assert!(!p.matches_ignore_case("logs:DescribeLogGroups"));
    }

    #[test]
    fn arn_components_do_not_leak() {
        let p = Pattern::new("arn:aws:ecs:*:111111111111:cluster/*");
        assert!(p.matches_arn("arn:aws:ecs:us-east-1:111111111111:cluster/prod"));
        assert!(!p.matches_arn("arn:aws:ecs:us-east-1:222222222222:cluster/prod"));
        assert!(!p.matches_arn("arn:aws:ecs:us-east-1:111111111111:service/prod/web"));
        // A wildcard in the region cannot swallow the account.
        let q = Pattern::new("arn:aws:ecs:us-*:cluster/x");
        assert!(!q.matches_arn("arn:aws:ecs:us-east-1:111111111111:cluster/x"));
        let logs = Pattern::new("arn:aws:logs:us-east-1:1:log-group:/app/*");
        assert!(logs.matches_arn("arn:aws:logs:us-east-1:1:log-group:/app/web:log-stream:x"));
        assert!(Pattern::new("*").matches_arn("anything"));
    }
}
