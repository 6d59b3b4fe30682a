//! The global matching step: given waiting calls, ready agents and the weight of each allowed
//! (call, agent) pair, choose the assignment with the largest total weight. Queue-by-queue
//! greedy dispatch (app_queue, mod_callcenter) can hand the only agent able to serve call A to
//! call B, which had other agents; a maximum-weight matching does not.
//!
//! Exact for small problems (Hungarian algorithm, O(n²m)); greedy by weight above the limit,
//! which bounds the work of one step.

/// Edges are (call index, agent index, weight); returns matched (call index, agent index).
pub fn solve(
    calls: usize,
    agents: usize,
    edges: &[(usize, usize, f64)],
    exact_limit: usize,
) -> Vec<(usize, usize)> {
    if edges.is_empty() {
        return Vec::new();
    }
    if calls == 1 || agents == 1 || calls.max(agents) > exact_limit {
        return greedy(calls, agents, edges);
    }
    hungarian(calls, agents, edges)
}

fn greedy(calls: usize, agents: usize, edges: &[(usize, usize, f64)]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..edges.len()).collect();
    // Stable on ties: the edge listed first (the strategy's earlier candidate) wins.
    order.sort_by(|&x, &y| edges[y].2.total_cmp(&edges[x].2).then(x.cmp(&y)));
    let mut call_used = vec![false; calls];
    let mut agent_used = vec![false; agents];
    let mut out = Vec::new();
    for i in order {
        let (c, a, _) = edges[i];
        if c < calls && a < agents && !call_used[c] && !agent_used[a] {
            call_used[c] = true;
            agent_used[a] = true;
            out.push((c, a));
        }
    }
    out
}

/// Maximum-weight matching on a rectangular matrix (missing edges are not matchable), by the
/// Hungarian method on costs `-weight`, with zero-weight dummy pairs for "leave unmatched".
fn hungarian(calls: usize, agents: usize, edges: &[(usize, usize, f64)]) -> Vec<(usize, usize)> {
    // Square n x n with n = calls + agents so every row may stay unmatched via a dummy column
    // at cost 0 (any real edge has positive weight, hence negative cost).
    let n = calls + agents;
    let mut cost = vec![0.0f64; n * n];
    const FORBIDDEN: f64 = 1e18;
    for c in 0..calls {
        for a in 0..agents {
            cost[c * n + a] = FORBIDDEN;
        }
    }
    for &(c, a, w) in edges {
        if c < calls && a < agents {
            let slot = &mut cost[c * n + a];
            *slot = slot.min(-w.max(0.0) - 1e-9);
        }
    }
    // Dummy rows (calls..n) against real agent columns cost 0; everything else 0 too.
    let assignment = kuhn_munkres(n, &cost);
    let mut out = Vec::new();
    for (c, &a) in assignment.iter().enumerate().take(calls) {
        if a < agents && cost[c * n + a] < 0.0 {
            out.push((c, a));
        }
    }
    out
}

/// Classic O(n³) assignment with potentials (min cost); returns the column of each row.
fn kuhn_munkres(n: usize, cost: &[f64]) -> Vec<usize> {
    let inf = f64::INFINITY;
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut p = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = inf;
            let mut j1 = 0usize;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut row_to_col = vec![usize::MAX; n];
    for j in 1..=n {
        if p[j] > 0 {
            row_to_col[p[j] - 1] = j - 1;
        }
    }
    row_to_col
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_matching_gives_the_constrained_call_its_only_agent() {
        // Call 0 (more urgent) can take agents 0 or 1; call 1 can only take agent 0, and agent
        // 0 is call 0's favourite. Greedy would strand call 1.
        let edges = [(0, 0, 10.0), (0, 1, 9.5), (1, 0, 5.0)];
        let mut got = solve(2, 2, &edges, 32);
        got.sort();
        assert_eq!(got, vec![(0, 1), (1, 0)]);
        let mut greedy_got = greedy(2, 2, &edges);
        greedy_got.sort();
        assert_eq!(greedy_got, vec![(0, 0)]);
    }

    #[test]
    fn unmatched_rows_stay_unmatched_when_no_edge_exists() {
        let edges = [(0, 0, 1.0), (2, 1, 3.0)];
        let mut got = solve(3, 2, &edges, 32);
        got.sort();
        assert_eq!(got, vec![(0, 0), (2, 1)]);
    }

    #[test]
    fn exact_matching_maximises_total_weight() {
        let edges = [(0, 0, 4.0), (0, 1, 3.0), (1, 0, 3.0), (1, 1, 1.0)];
        let got = solve(2, 2, &edges, 32);
        let total: f64 = got
            .iter()
            .map(|&(c, a)| edges.iter().find(|e| e.0 == c && e.1 == a).unwrap().2)
            .sum();
        assert_eq!(total, 6.0);
    }
}
