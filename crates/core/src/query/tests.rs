use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Default)]
struct Inst {
    attributes: BTreeMap<String, Option<String>>,
    connected: bool,
    version: Option<String>,
    ec2: Option<String>,
    registered: Option<i64>,
    running: u64,
    groups: Vec<String>,
}

impl Facts for Inst {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(|v| v.as_deref())
    }
    fn agent_connected(&self) -> bool {
        self.connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.version.as_deref()
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.ec2.as_deref()
    }
    fn registered_at(&self) -> Option<i64> {
        self.registered
    }
    fn running_tasks_count(&self) -> u64 {
        self.running
    }
    fn task_groups(&self) -> Vec<&str> {
        self.groups.iter().map(String::as_str).collect()
    }
}

fn inst() -> Inst {
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "ecs.availability-zone".to_string(),
        Some("us-east-1a".to_string()),
    );
    attributes.insert(
        "ecs.instance-type".to_string(),
        Some("t2.micro".to_string()),
    );
    attributes.insert("stack".to_string(), Some("prod".to_string()));
    attributes.insert("gpu".to_string(), None);
    Inst {
        attributes,
        connected: true,
        version: Some("1.14.5".into()),
        ec2: Some("i-abcd1234".into()),
        registered: Some(1_529_360_908), // 2018-06-18T22:28:28Z
        running: 2,
        groups: vec!["service:web".into(), "family:batch".into()],
    }
}

fn eval(text: &str) -> bool {
    parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .matches(&inst())
}

#[test]
fn documented_examples_evaluate() {
    assert!(eval("attribute:ecs.instance-type == t2.micro"));
    assert!(eval("attribute:ecs.instance-type =~ t2.*"));
    assert!(!eval("attribute:ecs.instance-type =~ g2.*"));
    assert!(eval("not(attribute:ecs.instance-type =~ g2.*)"));
    assert!(eval(
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"
    ));
    assert!(eval("attribute:ecs.availability-zone != us-east-1d"));
    assert!(eval("attribute:gpu exists"));
    assert!(eval("attribute:missing !exists"));
    assert!(eval("task:group == service:web"));
    assert!(!eval("task:group != service:web"));
    assert!(eval("task:group !in [service:db]"));
    assert!(eval("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']"));
    assert!(eval("registeredAt < 2018-06-19"));
    assert!(eval("registeredAt >= 2018-06-18T22:28:28Z"));
    assert!(eval("registeredAt == 2018-06-18T22:28:28+00:00"));
    assert!(eval("registeredAt == 2018-06-18T22:28:28"));
    assert!(eval("runningTasksCount > 1"));
    assert!(eval("agentVersion < 1.14.10"));
    assert!(eval("agentVersion >= 1.9"));
    assert!(eval("agentConnected == true"));
    assert!(eval("instanceType equals t2.micro"));
    assert!(eval(
        "(attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:stack == prod) || runningTasksCount == 0"
    ));
    assert!(!eval(
        "attribute:ecs.availability-zone in [us-east-1b] and attribute:stack == prod"
    ));
    assert!(eval("attribute:stack==prod&&attribute:gpu exists"));
}

#[test]
fn and_binds_tighter_than_or() {
    let e = parse("attribute:a == 1 or attribute:b == 2 and attribute:c == 3").unwrap();
    assert!(matches!(e, Expr::Or(_, ref r) if matches!(**r, Expr::And(_, _))));
}

#[test]
fn errors_name_where_they_failed() {
    let cases = [
        ("", 0, "empty expression"),
        ("attribute:x ==", 14, "expected a value"),
        ("colour == red", 0, "unknown subject 'colour'"),
        ("attribute:x ~~ 1", 12, "expected an operator"),
        (
            "runningTasksCount =~ 1",
            18,
            "cannot be used with runningTasksCount",
        ),
        ("(attribute:x == 1", 17, "expected ')'"),
        ("attribute:x in [a, b", 20, "expected ',' or ']'"),
        (
            "attribute:x == 1 attribute:y == 2",
            17,
            "unexpected 'attribute:y == 2'",
        ),
        ("registeredAt > yesterday", 15, "is not a date"),
        ("attribute:x =~ 'a('", 15, "invalid pattern"),
        ("attribute:x == 'open", 15, "unterminated quoted value"),
    ];
    for (text, position, message) in cases {
        let e = parse(text).expect_err(text);
        assert_eq!(e.position, position, "{text}: {e}");
        assert!(e.message.contains(message), "{text}: {e}");
    }
    let long = format!("attribute:x == {}", "a".repeat(MAX_EXPRESSION_LENGTH));
    assert!(parse(&long).unwrap_err().message.contains("longer than"));
    let deep = format!("{}attribute:x == 1{}", "(".repeat(200), ")".repeat(200));
    assert!(parse(&deep).unwrap_err().message.contains("nested deeper"));
}

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._/-]{1,12}"
}

fn value() -> impl Strategy<Value = String> {
    // Anything, including quotes, backslashes, spaces and keywords.
    prop_oneof![word(), "[ -~]{1,10}", Just("and".to_string())]
}

fn comparison() -> impl Strategy<Value = Expr> {
    let subject = prop_oneof![
        word().prop_map(Subject::Attribute),
        Just(Subject::Ec2InstanceId),
        Just(Subject::TaskGroup),
        Just(Subject::AgentConnected),
    ];
    (subject, 0..6u8, prop::collection::vec(value(), 1..4)).prop_map(|(subject, k, vals)| {
        let (op, argument) = match k {
            0 => (Op::Eq, Argument::Value(vals[0].clone())),
            1 => (Op::Ne, Argument::Value(vals[0].clone())),
            2 => (Op::In, Argument::List(vals)),
            3 => (Op::NotIn, Argument::List(vals)),
            4 => (
                Op::Matches,
                Argument::Pattern(Pattern::new(regex::escape(&vals[0])).unwrap()),
            ),
            _ => (
                Op::NotMatches,
                Argument::Pattern(Pattern::new(format!("{}.*", regex::escape(&vals[0]))).unwrap()),
            ),
        };
        Expr::Compare(Comparison {
            subject,
            op,
            argument,
        })
    })
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        comparison(),
        word().prop_map(|n| Expr::Compare(Comparison {
            subject: Subject::Attribute(n),
            op: Op::Exists,
            argument: Argument::None,
        })),
        (0..1000u64).prop_map(|n| Expr::Compare(Comparison {
            subject: Subject::RunningTasksCount,
            op: Op::Le,
            argument: Argument::Value(n.to_string()),
        })),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
        ]
    })
}

proptest! {
    /// Whatever is printed parses back to the same tree.
    #[test]
    fn printed_expressions_parse_to_the_same_tree(e in expr()) {
        let text = e.to_string();
        prop_assume!(text.chars().count() <= MAX_EXPRESSION_LENGTH);
        let back = parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        prop_assert_eq!(back, e);
    }

    /// No input makes the parser panic; what it accepts prints and parses
    /// back to the same tree.
    #[test]
    fn any_text_parses_or_fails_cleanly(text in "[ -~]{0,80}") {
        if let Ok(e) = parse(&text) {
            let again = parse(&e.to_string()).unwrap();
            prop_assert_eq!(again, e);
        }
    }
}
