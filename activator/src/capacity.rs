//! How much of a revision's capacity one activator may hand out (Knative's `calculateCapacity`
//! and `assignSlice`, reference §7.2), as pure functions.
//!
//! Knative runs a tier of activators, each fronting a share of a revision's pods. wisp runs one
//! activator per node in front of that node's replicas, so its throttler always takes every
//! backend (`self_index = None`, one activator) and its capacity is `cc × backends`. These
//! functions keep Knative's multi-activator arithmetic exact anyway, so a future multi-node
//! activator tier has it ready, and the acceptance vectors V34–V35 pin it down.

/// Knative's `revisionMaxConcurrency` (MaxInt32): the clamp for capacities, and the value an
/// open (cc = 0) breaker reports.
pub const REVISION_MAX_CONCURRENCY: u32 = i32::MAX as u32;

/// Capacity in ClusterIP mode (no per-pod routing): `cc × ready / activators`, at least 1 when
/// the product is positive; open (the maximum) when cc = 0 with a backend, 0 with none.
pub fn cluster_ip_capacity(
    container_concurrency: u32,
    ready_backends: u32,
    activators: u32,
) -> u32 {
    let mut capacity = u64::from(container_concurrency) * u64::from(ready_backends);
    if capacity > 0 {
        capacity = (capacity / u64::from(activators.max(1))).max(1);
    }
    clamp(container_concurrency, ready_backends, capacity)
}

/// Capacity in pod-addressable mode: `cc × pods assigned to this activator`; open when cc = 0
/// with a backend, 0 with none.
pub fn pod_capacity(container_concurrency: u32, assigned_pods: u32) -> u32 {
    let capacity = u64::from(container_concurrency) * u64::from(assigned_pods);
    clamp(container_concurrency, assigned_pods, capacity)
}

fn clamp(container_concurrency: u32, backends: u32, capacity: u64) -> u32 {
    if backends > 0
        && (container_concurrency == 0 || capacity > u64::from(REVISION_MAX_CONCURRENCY))
    {
        REVISION_MAX_CONCURRENCY
    } else {
        // Cannot exceed the clamp here: either it was clamped above or it is ≤ the max.
        u32::try_from(capacity).unwrap_or(REVISION_MAX_CONCURRENCY)
    }
}

/// The pods this activator fronts, out of `pods` sorted by address (`assignSlice`).
///
/// `self_index` is this activator's position among the revision's `activators`; `None` (not in
/// the list yet), an index out of range, or a single activator means "all pods".
pub fn assign_slice<T>(pods: &[T], self_index: Option<usize>, activators: usize) -> Vec<&T> {
    let all = || pods.iter().collect();
    let Some(index) = self_index.filter(|i| *i < activators) else {
        return all();
    };
    let count = pods.len();
    if count <= 1 || activators <= 1 {
        return all();
    }
    if activators > count {
        return vec![&pods[index % count]];
    }
    let size = count / activators;
    let mut picked: Vec<&T> = pods[index * size..(index + 1) * size].iter().collect();
    let remainder = count % activators;
    if index < remainder {
        picked.push(&pods[count - remainder + index]);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// V34: throttler capacity in ClusterIP mode with cc 10.
    #[test]
    fn v34_cluster_ip_capacity() {
        assert_eq!(cluster_ip_capacity(10, 10, 5), 20);
        assert_eq!(
            cluster_ip_capacity(10, 10, 200),
            1,
            "at least one when positive"
        );
        assert_eq!(cluster_ip_capacity(10, 0, 5), 0);
    }

    /// V35: pod mode with two activators and index assignment.
    #[test]
    fn v35_pod_mode_capacity_with_assign_slice() {
        let three = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
        let first = assign_slice(&three, Some(0), 2);
        let second = assign_slice(&three, Some(1), 2);
        assert_eq!(first, vec![&"10.0.0.1", &"10.0.0.3"]);
        assert_eq!(second, vec![&"10.0.0.2"]);
        assert_eq!(pod_capacity(10, first.len() as u32), 20);
        assert_eq!(pod_capacity(10, second.len() as u32), 10);

        let five = ["a", "b", "c", "d", "e"];
        let first = assign_slice(&five, Some(0), 2);
        let second = assign_slice(&five, Some(1), 2);
        assert_eq!(first, vec![&"a", &"b", &"e"]);
        assert_eq!(second, vec![&"c", &"d"]);
        assert_eq!(pod_capacity(1, first.len() as u32), 3);
        assert_eq!(pod_capacity(1, second.len() as u32), 2);
    }

    #[test]
    fn unlimited_concurrency_is_open_with_a_backend_and_closed_without() {
        assert_eq!(pod_capacity(0, 1), REVISION_MAX_CONCURRENCY);
        assert_eq!(pod_capacity(0, 0), 0);
        assert_eq!(cluster_ip_capacity(0, 3, 2), REVISION_MAX_CONCURRENCY);
        assert_eq!(cluster_ip_capacity(0, 0, 2), 0);
        assert_eq!(
            pod_capacity(u32::MAX, 4),
            REVISION_MAX_CONCURRENCY,
            "clamped"
        );
    }

    #[test]
    fn unassigned_or_single_activator_takes_every_pod() {
        let pods = [1, 2, 3];
        assert_eq!(assign_slice(&pods, None, 2).len(), 3);
        assert_eq!(assign_slice(&pods, Some(0), 1).len(), 3);
        assert_eq!(
            assign_slice(&pods, Some(7), 2).len(),
            3,
            "index out of range"
        );
    }

    #[test]
    fn more_activators_than_pods_each_take_one_pod() {
        let pods = ["x", "y"];
        assert_eq!(assign_slice(&pods, Some(0), 5), vec![&"x"]);
        assert_eq!(assign_slice(&pods, Some(3), 5), vec![&"y"]);
    }

    #[test]
    fn slices_partition_the_pods() {
        for count in 0..12usize {
            for activators in 1..6usize {
                if activators > count {
                    continue;
                }
                let pods: Vec<usize> = (0..count).collect();
                let mut seen: Vec<usize> = (0..activators)
                    .flat_map(|i| assign_slice(&pods, Some(i), activators))
                    .copied()
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, pods, "{count} pods over {activators} activators");
            }
        }
    }
}
