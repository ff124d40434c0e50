//! Assignment of candidates to resource blocks through the `lsap` crate
//! (a port of SciPy's `linear_sum_assignment`).

/// A uniformly random matching of min(n, K) candidates to distinct RBs, as
/// (candidate, RB) pairs: the `fixed` and `rb` policies.
pub fn random_matching(n: usize, k: usize, rng: &mut crate::sim::rng::Rng) -> Vec<(usize, usize)> {
    let m = n.min(k);
    let chosen = rand::seq::index::sample(rng, n, m).into_vec();
    let rbs = rand::seq::index::sample(rng, k, m).into_vec();
    chosen.into_iter().zip(rbs).collect()
}

/// Maximum-weight assignment on an `n x k` row-major weight matrix; pairs
/// with weight <= 0 are dropped (leaving a device out is worth 0). Returns
/// `(row, col)` pairs sorted by row.
pub fn max_weight(n: usize, k: usize, weights: &[f64]) -> Vec<(usize, usize)> {
    debug_assert_eq!(weights.len(), n * k);
    // Reduce the instance exactly before solving:
    // - a row or column without a positive weight can only be matched at
    //   weight 0, which is the same as unmatched;
    // - some optimal matching uses, for every column, one of that column's
    //   k best rows (if a column sits on a row outside its k best, one of
    //   those k rows is free, as only k - 1 other columns exist, and moving
    //   there loses nothing). So only the union of the per-column top-k rows
    //   is kept: a few hundred rows instead of thousands, because a device
    //   that is good on one RB is usually good on the others.
    let mut keep = vec![false; n];
    let mut col: Vec<(f64, usize)> = Vec::with_capacity(n);
    for j in 0..k {
        col.clear();
        col.extend((0..n).filter(|&i| weights[i * k + j] > 0.0).map(|i| (weights[i * k + j], i)));
        if col.len() > k {
            col.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            col.truncate(k);
        }
        for &(_, i) in &col {
            keep[i] = true;
        }
    }
    let rows: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
    let cols: Vec<usize> = (0..k).filter(|&j| rows.iter().any(|&i| weights[i * k + j] > 0.0)).collect();
    if rows.is_empty() || cols.is_empty() {
        return Vec::new();
    }
    let (rn, cn) = (rows.len(), cols.len());
    let mut sub = vec![0.0; rn * cn];
    for (a, &i) in rows.iter().enumerate() {
        for (b, &j) in cols.iter().enumerate() {
            sub[a * cn + b] = weights[i * k + j].max(0.0);
        }
    }
    // A matrix of finite numbers is always a valid LSAP instance.
    let Ok((r, c)) = lsap::solve(rn, cn, &sub, true) else {
        return Vec::new();
    };
    let mut out: Vec<(usize, usize)> =
        r.into_iter().zip(c).map(|(a, b)| (rows[a], cols[b])).filter(|&(i, j)| weights[i * k + j] > 0.0).collect();
    out.sort_unstable();
    out
}

/// The paper's construction (eq. 30, 31): a balanced bipartite graph with
/// virtual vertices of weight 0 so that a perfect matching exists, solved as
/// a minimum-weight perfect matching on costs `-weight`. Equivalent to
/// [`max_weight`]; kept so tests can show it.
pub fn min_weight_perfect_with_virtual(n: usize, k: usize, weights: &[f64]) -> Vec<(usize, usize)> {
    let m = n.max(k);
    let mut cost = vec![0.0; m * m];
    for i in 0..n {
        for j in 0..k {
            cost[i * m + j] = -weights[i * k + j].max(0.0);
        }
    }
    let Ok((rows, cols)) = lsap::solve(m, m, &cost, false) else {
        return Vec::new();
    };
    let mut out: Vec<(usize, usize)> =
        rows.into_iter().zip(cols).filter(|&(r, c)| r < n && c < k && weights[r * k + c] > 0.0).collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_vertex_construction_agrees() {
        let w = [3.0, 1.0, 0.0, 2.0, 4.0, -1.0, 0.5, 0.2, 5.0, 1.0, 1.0, 1.0];
        let a = max_weight(4, 3, &w);
        let b = min_weight_perfect_with_virtual(4, 3, &w);
        let total = |v: &[(usize, usize)]| v.iter().map(|&(r, c)| w[r * 3 + c]).sum::<f64>();
        assert_eq!(total(&a), total(&b));
        assert_eq!(total(&a), 12.0);
    }
}
