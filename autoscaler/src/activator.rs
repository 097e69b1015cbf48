//! What the autoscaler tells the activator (reference §6.1 step 5, §7.5): whether it must stay in
//! a revision's path, and how many activators should front it.

use crate::spec::ResolvedSpec;

/// Knative's `minActivators`.
pub const MIN_ACTIVATORS: u32 = 2;

/// Knative's SKS mode choice: serve directly only with capacity wanted (`want > 0`) and enough
/// excess burst capacity (`EBC ≥ 0`), and (the SKS controller's override) only when some replica
/// is ready. Everything else buffers in the activator.
pub fn activator_in_path(want: i32, excess_burst_capacity: i32, ready: u32) -> bool {
    !(want > 0 && excess_burst_capacity >= 0 && ready > 0)
}

/// `computeNumActivators`: enough activators to cover the revision's capacity plus the burst
/// capacity, at `activator-capacity` each, never fewer than two.
pub fn num_activators(spec: &ResolvedSpec, ready: u32) -> u32 {
    let tbc = spec.target_burst_capacity;
    if tbc == 0.0 {
        return MIN_ACTIVATORS;
    }
    let mut to_cover = f64::from(ready) * spec.total_value;
    if tbc > 0.0 {
        to_cover += tbc;
    }
    let needed = (to_cover / spec.activator_capacity).ceil();
    // Saturating float → int: absurd capacities cannot wrap.
    (needed.min(f64::from(u32::MAX)) as u32).max(MIN_ACTIVATORS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_directly_only_with_capacity_wanted_headroom_and_a_ready_replica() {
        assert!(!activator_in_path(3, 0, 3));
        assert!(activator_in_path(3, -1, 3), "negative burst headroom");
        assert!(activator_in_path(0, 10, 3), "scaling to zero");
        assert!(activator_in_path(-1, 10, 3), "scale unknown");
        assert!(activator_in_path(3, 10, 0), "nothing ready to serve");
    }
}
