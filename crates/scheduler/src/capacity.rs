//! How a capacity provider strategy shares tasks among its providers, as
//! ECS distributes them: the provider with a `base` first, until it runs
//! that many; then each further task goes to the provider furthest below
//! its `weight` share of the tasks beyond the bases (ties go to the
//! earlier item). Weight 0 takes no task beyond its base.

/// One item of a strategy, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub base: u32,
    pub weight: u32,
}

/// How many of `count` new tasks each provider of `shares` gets, given
/// the tasks each already runs (`running`, in the same order; a service's
/// live tasks, or nothing for RunTask). `None` if a task has nowhere to go
/// (every weight 0 and every base met): validation refuses such strategies.
pub fn distribute(shares: &[Share], running: &[u32], count: u32) -> Option<Vec<u32>> {
    let mut n: Vec<u32> = (0..shares.len())
        .map(|i| running.get(i).copied().unwrap_or(0))
        .collect();
    let mut out = vec![0u32; shares.len()];
    for _ in 0..count {
        let i = match shares.iter().zip(&n).position(|(s, &k)| k < s.base) {
            Some(i) => i,
            None => next_by_weight(shares, &n)?,
        };
        n[i] += 1;
        out[i] += 1;
    }
    Some(out)
}

/// The provider with weight furthest below its share once one more task
/// runs beyond the bases: the largest `(T + 1) * w / W - beyond`, compared
/// in integers (`T` tasks beyond the bases now, `W` the weights' sum).
fn next_by_weight(shares: &[Share], n: &[u32]) -> Option<usize> {
    let beyond = |i: usize| u64::from(n[i].saturating_sub(shares[i].base));
    let total: u64 = (0..shares.len()).map(beyond).sum();
    let weights: u64 = shares.iter().map(|s| u64::from(s.weight)).sum();
    let deficit = |i: usize| {
        (total + 1) as i128 * i128::from(shares[i].weight) - (beyond(i) * weights) as i128
    };
    (0..shares.len())
        .filter(|&i| shares[i].weight > 0)
        // Ties keep the earlier item.
        .reduce(|best, i| if deficit(i) > deficit(best) { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(base: u32, weight: u32) -> Share {
        Share { base, weight }
    }

    #[test]
    fn base_first_then_weights_one_to_three() {
        // FARGATE base 2 weight 0, FARGATE_SPOT 1, the pool 3: 10 tasks.
        let shares = [s(2, 0), s(0, 1), s(0, 3)];
        assert_eq!(distribute(&shares, &[], 10), Some(vec![2, 2, 6]));
        assert_eq!(distribute(&shares, &[], 2), Some(vec![2, 0, 0]));
        assert_eq!(distribute(&shares, &[], 3), Some(vec![2, 0, 1]));
        assert_eq!(distribute(&shares, &[], 6), Some(vec![2, 1, 3]));
    }

    #[test]
    fn a_base_provider_with_weight_shares_beyond_its_base() {
        let shares = [s(1, 1), s(0, 1)];
        assert_eq!(distribute(&shares, &[], 5), Some(vec![3, 2]));
    }

    #[test]
    fn a_service_fills_the_provider_furthest_below_its_share() {
        let shares = [s(2, 0), s(0, 1), s(0, 3)];
        // The spot task was interrupted: its replacement goes back there.
        assert_eq!(distribute(&shares, &[2, 1, 6], 1), Some(vec![0, 1, 0]));
        // A lost base task is replaced first.
        assert_eq!(distribute(&shares, &[1, 2, 6], 1), Some(vec![1, 0, 0]));
    }

    #[test]
    fn nowhere_to_go_is_none() {
        assert_eq!(distribute(&[s(1, 0)], &[], 2), None);
        assert_eq!(distribute(&[s(1, 0)], &[], 1), Some(vec![1]));
        assert_eq!(distribute(&[s(0, 1)], &[], 0), Some(vec![0]));
    }

    proptest! {
        /// Every task goes somewhere; beyond the base, each provider holds
        /// its weighted share to within one task; weight 0 holds no more
        /// than its base.
        #[test]
        fn shares_are_exact(
            items in prop::collection::vec((0u32..4, 0u32..6), 1..6),
            count in 0u32..60,
        ) {
            let mut shares: Vec<Share> = items.iter().map(|&(b, w)| s(b, w)).collect();
            // Only one item may have a base.
            for x in shares.iter_mut().skip(1) { x.base = 0; }
            prop_assume!(shares.iter().any(|x| x.weight > 0));
            let out = distribute(&shares, &[], count).unwrap();
            prop_assert_eq!(out.iter().sum::<u32>(), count);
            let base = shares[0].base.min(count);
            prop_assert!(out[0] >= base);
            let rest = count - base;
            let total_w: u32 = shares.iter().map(|x| x.weight).sum();
            for (i, x) in shares.iter().enumerate() {
                let beyond = out[i] - if i == 0 { base } else { 0 };
                let ideal = f64::from(rest) * f64::from(x.weight) / f64::from(total_w);
                prop_assert!((f64::from(beyond) - ideal).abs() < 1.0 + 1e-9,
                    "item {} got {} beyond base, ideal {}", i, beyond, ideal);
            }
        }
    }
}
