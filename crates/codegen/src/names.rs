//! Naming rules: how model names become Rust identifiers.

use heck::{ToSnakeCase, ToUpperCamelCase};
use std::collections::BTreeSet;

/// Rust keywords (strict and reserved, all editions) usable as raw identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["crate", "self", "super", "Self", "_"];

/// Names a generated type must not take: they would shadow the prelude or the
/// generated module's own items inside `use super::*` scopes.
const RESERVED_TYPES: &[&str] = &[
    "Box",
    "Clone",
    "Copy",
    "Debug",
    "Default",
    "Eq",
    "Err",
    "From",
    "Hash",
    "Into",
    "None",
    "Ok",
    "Option",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Result",
    "Self",
    "Send",
    "Sized",
    "Some",
    "String",
    "Sync",
    "ToString",
    "Vec",
    "Operation",
];

/// A field or method name: snake_case, keywords made raw (`r#type`), the few
/// that cannot be raw suffixed with `_`.
pub fn field_name(model_name: &str) -> String {
    let s = model_name.to_snake_case();
    let s = if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("m_{s}")
    } else {
        s
    };
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else if NOT_RAW.contains(&s.as_str()) {
        format!("{s}_")
    } else {
        s
    }
}

/// A type name for a model shape: shape names are already PascalCase; the
/// few that would collide with the prelude or generated items get `Shape`
/// appended.
pub fn type_name(shape: &str) -> String {
    let s: String = shape
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let s = if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("S{s}")
    } else {
        s
    };
    if RESERVED_TYPES.contains(&s.as_str()) || KEYWORDS.contains(&s.as_str()) {
        format!("{s}Shape")
    } else {
        s
    }
}

/// Variant names for an enum's values, in order: UpperCamelCase with every
/// non-alphanumeric character a word separator, `V` before a leading digit,
/// `Value` after `Self` and after `Unknown` (taken by the catch-all variant),
/// remaining collisions numbered from 2.
pub fn variant_names(values: &[String]) -> Vec<String> {
    let mut taken: BTreeSet<String> = BTreeSet::from(["Unknown".to_string()]);
    values
        .iter()
        .map(|v| {
            let spaced: String = v
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { ' ' })
                .collect();
            let mut base = spaced.to_upper_camel_case();
            base.retain(|c| c.is_ascii_alphanumeric());
            if base.is_empty() {
                base = "Empty".to_string();
            }
            if base.starts_with(|c: char| c.is_ascii_digit()) {
                base = format!("V{base}");
            }
            if base == "Self" || base == "Unknown" {
                base.push_str("Value");
            }
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}{n}");
                n += 1;
            }
            taken.insert(name.clone());
            name
        })
        .collect()
}

/// Field names for a structure's members, in order, deduplicated by
/// numbering (`name`, `name_2`).
pub fn field_names(members: &[&str]) -> Vec<String> {
    let mut taken = BTreeSet::new();
    members
        .iter()
        .map(|m| {
            let base = field_name(m);
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}_{n}");
                n += 1;
            }
            taken.insert(name.clone());
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variants(values: &[&str]) -> Vec<String> {
        variant_names(&values.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn fields_are_snake_case_and_keywords_raw() {
        assert_eq!(field_name("clusterArn"), "cluster_arn");
        assert_eq!(field_name("SecretId"), "secret_id");
        assert_eq!(field_name("type"), "r#type");
        assert_eq!(field_name("match"), "r#match");
        assert_eq!(field_name("self"), "self_");
        assert_eq!(field_names(&["name", "Name"]), ["name", "name_2"]);
    }

    #[test]
    fn variants_split_on_punctuation_and_dedupe() {
        assert_eq!(
            variants(&["FARGATE_SPOT", "EC2", "t2.micro"]),
            ["FargateSpot", "Ec2", "T2Micro"]
        );
        assert_eq!(variants(&["3d", "*"]), ["V3d", "Empty"]);
        assert_eq!(
            variants(&["ENABLED", "enabled", "Enabled"]),
            ["Enabled", "Enabled2", "Enabled3"]
        );
        assert_eq!(
            variants(&["UNKNOWN", "self"]),
            ["UnknownValue", "SelfValue"]
        );
    }

    #[test]
    fn types_avoid_prelude_names() {
        assert_eq!(type_name("Cluster"), "Cluster");
        assert_eq!(type_name("Result"), "ResultShape");
        assert_eq!(type_name("Operation"), "OperationShape");
    }
}
