//! Naming rules ECS applies to clusters, families and containers:
//! "up to 255 letters (uppercase and lowercase), numbers, underscores, and
//! hyphens".

pub const MAX_NAME_LEN: usize = 255;

pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `s` is a well-formed region name such as `us-east-1` or
/// `us-gov-west-1`: lowercase words and a trailing number, joined by hyphens.
pub fn is_valid_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && s.len() <= 32
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        assert!(is_valid_name("my-cluster_01"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("bad name!"));
        assert!(!is_valid_name(&"a".repeat(256)));
        assert!(is_valid_name(&"a".repeat(255)));
    }

    #[test]
    fn regions() {
        assert!(is_valid_region("us-east-1"));
        assert!(is_valid_region("us-gov-west-1"));
        assert!(!is_valid_region("us_east_1"));
        assert!(!is_valid_region("useast1"));
        assert!(!is_valid_region("US-EAST-1"));
    }

    proptest! {
        #[test]
        fn any_name_of_allowed_chars_is_valid(s in "[A-Za-z0-9_-]{1,255}") {
            prop_assert!(is_valid_name(&s));
        }

        #[test]
        fn a_forbidden_char_makes_it_invalid(a in "[A-Za-z0-9_-]{0,20}", c in "[ !@#:/.]", b in "[A-Za-z0-9_-]{0,20}") {
            let s = format!("{a}{c}{b}");
            prop_assert!(!is_valid_name(&s));
        }
    }
}
