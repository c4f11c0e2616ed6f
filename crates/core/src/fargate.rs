//! Task-level CPU and memory as ECS accepts them, the combinations
//! Fargate supports, and (in [`sandbox`]) what Fargate refuses.

pub mod sandbox;

pub use sandbox::{
    check_definition, check_launch, check_overrides, is_s3_object_arn, may_add_capability,
    Definition, ADDABLE_CAPABILITY, MAX_NOFILE,
};

/// Parses a task-level `cpu` value: CPU units (`"1024"`) or vCPUs
/// (`"1 vCPU"`, `"0.25 vcpu"`). Returns CPU units.
pub fn parse_cpu(s: &str) -> Option<u32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    let num = lower.strip_suffix("vcpu")?.trim();
    let v: f64 = num.parse().ok()?;
    let units = v * 1024.0;
    (v > 0.0 && units.fract() == 0.0).then_some(units as u32)
}

/// Parses a task-level `memory` value: MiB (`"2048"`) or GB (`"2 GB"`,
/// `"0.5GB"`). Returns MiB.
pub fn parse_memory(s: &str) -> Option<u32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    let num = lower.strip_suffix("gb")?.trim();
    let v: f64 = num.parse().ok()?;
    let mib = v * 1024.0;
    (v > 0.0 && mib.fract() == 0.0).then_some(mib as u32)
}

/// Whether Fargate (Linux) supports `cpu` units with `memory` MiB.
pub fn is_supported(cpu: u32, memory: u32) -> bool {
    let gib = |g: u32| g * 1024;
    let stepped = |lo: u32, hi: u32, step: u32| {
        memory >= lo && memory <= hi && (memory - lo).is_multiple_of(step)
    };
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => stepped(gib(1), gib(4), 1024),
        1024 => stepped(gib(2), gib(8), 1024),
        2048 => stepped(gib(4), gib(16), 1024),
        4096 => stepped(gib(8), gib(30), 1024),
        8192 => stepped(gib(16), gib(60), 4096),
        16384 => stepped(gib(32), gib(120), 8192),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(parse_cpu("256"), Some(256));
        assert_eq!(parse_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_cpu(".25 vcpu"), Some(256));
        assert_eq!(parse_cpu("lots"), None);
        assert_eq!(parse_memory("2 GB"), Some(2048));
        assert_eq!(parse_memory("0.5GB"), Some(512));
        assert_eq!(parse_memory("3072"), Some(3072));
    }

    #[test]
    fn combinations() {
        assert!(is_supported(256, 512));
        assert!(!is_supported(256, 4096));
        assert!(is_supported(512, 3072));
        assert!(is_supported(4096, 30720));
        assert!(!is_supported(4096, 31744));
        assert!(is_supported(8192, 20480));
        assert!(!is_supported(8192, 17408));
        assert!(!is_supported(300, 1024));
    }
}
