//! The decider (reference §5, Knative's `autoscaler.Scale`): from the observed stable and panic
//! values and the ready count, the desired scale and the excess burst capacity. Pure arithmetic
//! over its own panic and delay state; the caller passes time in.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::max_window::MaxTimeWindow;
use crate::spec::ResolvedSpec;

/// How often Knative evaluates each decider; also the slot size of the scale-down delay window.
pub const TICK_INTERVAL: Duration = Duration::from_secs(2);

/// The stable and panic window averages of the revision's scaling metric (revision-wide totals).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observed {
    pub stable: f64,
    pub panic: f64,
}

/// One decision. `valid == false` means "no data": the caller keeps the previous scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleResult {
    pub desired: i32,
    pub excess_burst_capacity: i32,
    pub valid: bool,
}

impl ScaleResult {
    pub const INVALID: ScaleResult = ScaleResult {
        desired: 0,
        excess_burst_capacity: 0,
        valid: false,
    };
}

/// Per-revision decider state: panic mode, its high-water mark and the scale-down delay window.
#[derive(Clone, Debug)]
pub struct Decider {
    spec: ResolvedSpec,
    panic_time: Option<Timestamp>,
    max_panic_pods: i32,
    delay_window: Option<MaxTimeWindow>,
}

impl Decider {
    /// Knative's `newAutoscaler`: a decider created while more than one pod is ready starts in
    /// panic mode at that count, because its metric history was lost and scaling down blind would
    /// be worse than holding.
    pub fn new(spec: ResolvedSpec, ready: u32, now: Timestamp) -> Self {
        let ready = clamp_i32(u64::from(ready));
        let delay_window = (spec.scale_down_delay > Duration::ZERO)
            .then(|| MaxTimeWindow::new(spec.scale_down_delay, TICK_INTERVAL));
        Self {
            spec,
            panic_time: (ready > 1).then_some(now),
            max_panic_pods: ready,
            delay_window,
        }
    }

    pub fn spec(&self) -> &ResolvedSpec {
        &self.spec
    }

    /// Replaces the spec. As in Knative, the scale-down delay window keeps the size it was created
    /// with.
    pub fn update_spec(&mut self, spec: ResolvedSpec) {
        self.spec = spec;
    }

    pub fn is_panicking(&self) -> bool {
        self.panic_time.is_some()
    }

    pub fn max_panic_pods(&self) -> i32 {
        self.max_panic_pods
    }

    /// One evaluation. `observed == None` means no data, which leaves the scale unchanged.
    pub fn scale(&mut self, now: Timestamp, ready: u32, observed: Option<Observed>) -> ScaleResult {
        let Some(observed) = observed else {
            return ScaleResult::INVALID;
        };
        let spec = &self.spec;
        let ready_f = f64::from(ready);
        let r = ready_f.max(1.0);

        let up_cap = (spec.max_scale_up_rate * r).ceil();
        let down_floor = if spec.reachable() {
            (r / spec.max_scale_down_rate).floor()
        } else {
            0.0
        };
        let dspc = (observed.stable / spec.target_value).ceil();
        let dppc = (observed.panic / spec.target_value).ceil();

        let mut stable_pods = clamp_f64_to_i32(dspc.max(down_floor).min(up_cap));
        let mut panic_pods = clamp_f64_to_i32(dppc.max(down_floor).min(up_cap));

        // Applied after the rate clamp on purpose: a cold start may jump straight to it.
        let activation = clamp_i32(u64::from(spec.activation_scale));
        if activation > 1 {
            if dspc > 0.0 && stable_pods < activation {
                stable_pods = activation;
            }
            if dppc > 0.0 && panic_pods < activation {
                panic_pods = activation;
            }
        }

        // The panic test uses the unclamped count: a surge must register even when rate-limited.
        let over_threshold = dppc / r >= spec.panic_threshold;
        match self.panic_time {
            _ if over_threshold => self.panic_time = Some(now),
            Some(since) if since + spec.stable_window < now => {
                self.panic_time = None;
                self.max_panic_pods = 0;
            }
            _ => {}
        }

        let mut desired = stable_pods;
        if self.panic_time.is_some() {
            // Provision for whichever window sees more, and never scale down while panicking.
            desired = desired.max(panic_pods);
            self.max_panic_pods = self.max_panic_pods.max(desired);
            desired = self.max_panic_pods;
        }

        if spec.reachable()
            && let Some(window) = self.delay_window.as_mut()
        {
            window.record(now, desired);
            desired = window.current();
        }

        let tbc = spec.target_burst_capacity;
        let excess_burst_capacity = if tbc == 0.0 {
            0
        } else if tbc > 0.0 {
            // Raw ready (not R) and the panic value: burst headroom right now.
            clamp_f64_to_i32((ready_f * spec.total_value - tbc - observed.panic).floor())
        } else {
            -1
        };

        ScaleResult {
            desired,
            excess_burst_capacity,
            valid: true,
        }
    }
}

/// Knative's initial `ExcessBurstCapacity` for a new decider: TBC itself when 0 or -1, otherwise
/// `initialScale × total − TBC` (so a default revision starts with the activator in the path).
pub fn initial_excess_burst_capacity(spec: &ResolvedSpec) -> i32 {
    let tbc = spec.target_burst_capacity;
    if tbc == 0.0 || tbc == -1.0 {
        tbc as i32
    } else {
        clamp_f64_to_i32((f64::from(spec.initial_scale) * spec.total_value - tbc).floor())
    }
}

fn clamp_i32(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Go's float → int32 conversion on values that are already whole; saturating instead of
/// wrapping on absurd inputs.
fn clamp_f64_to_i32(v: f64) -> i32 {
    if v.is_nan() {
        0
    } else {
        v.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    }
}
