//! Cost of one decision, of window recording, and of a full loop pass over 10,000 revisions.
//!
//! Run: `cargo bench -p wisp-autoscaler --bench autoscaler -- --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use wisp_autoscaler::annotations::Aggregation;
use wisp_autoscaler::decider::{Decider, Observed};
use wisp_autoscaler::spec::{ResolvedSpec, RevisionSpec};
use wisp_autoscaler::window::MetricWindow;
use wisp_autoscaler::{Autoscaler, AutoscalerConfig, ManualClock, RevisionKey, Stat, Timestamp};

const REVISIONS: usize = 10_000;

fn default_spec() -> ResolvedSpec {
    ResolvedSpec::resolve(&AutoscalerConfig::default(), &RevisionSpec::default())
        .expect("defaults are valid")
}

fn decider_scale(c: &mut Criterion) {
    let mut decider = Decider::new(default_spec(), 3, Timestamp::ZERO);
    let mut second = 0u64;
    c.bench_function("decider_scale_one_decision", |b| {
        b.iter(|| {
            second += 2;
            let load = (second % 400) as f64;
            black_box(decider.scale(
                Timestamp::from_secs(second),
                black_box(5),
                Some(Observed {
                    stable: load,
                    panic: load * 1.5,
                }),
            ))
        })
    });
}

fn window_recording(c: &mut Criterion) {
    for (name, aggregation) in [
        ("window_record_and_average_linear_60", Aggregation::Linear),
        (
            "window_record_and_average_weighted_60",
            Aggregation::WeightedExponential,
        ),
    ] {
        let mut window = MetricWindow::new(60, aggregation);
        let mut second = 0u64;
        c.bench_function(name, |b| {
            b.iter(|| {
                second += 1;
                window.record(second, black_box(3.5));
                black_box(window.average(second))
            })
        });
    }
    let mut window = MetricWindow::new(60, Aggregation::Linear);
    let mut second = 0u64;
    c.bench_function("window_record_only", |b| {
        b.iter(|| {
            second += 1;
            window.record(second, black_box(3.5))
        })
    });
}

fn loop_pass(c: &mut Criterion) {
    let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
    let autoscaler = Autoscaler::new(AutoscalerConfig::default(), clock.clone());
    let handles: Vec<_> = (0..REVISIONS)
        .map(|i| {
            let handle = autoscaler
                .register(
                    RevisionKey::new("bench", format!("rev-{i:05}")),
                    RevisionSpec::default(),
                    0,
                )
                .expect("defaults are valid");
            handle.set_ready((i % 5) as u32);
            handle
        })
        .collect();
    // Fill the windows with a minute of varied load.
    for second in 0..60u64 {
        let now = Timestamp::from_secs(second);
        clock.set(now);
        for (i, h) in handles.iter().enumerate() {
            h.record(Stat {
                concurrency: ((i as u64 + second) % 300) as f64,
                requests: 0.0,
            });
        }
        autoscaler.step(now);
    }
    // Evaluate at the second after the last record, again and again, so every pass does the full
    // arithmetic on live windows (time moving on would empty them and make passes cheaper).
    let now = Timestamp::from_secs(60);
    c.bench_function("loop_tick_pass_10000_revisions", |b| {
        b.iter(|| autoscaler.tick(now))
    });
    c.bench_function("loop_collect_pass_10000_revisions", |b| {
        b.iter(|| autoscaler.collect(now))
    });
    let handle = handles[17].clone();
    c.bench_function("request_started_and_finished", |b| {
        b.iter(|| {
            handle.request_started();
            handle.request_finished();
        })
    });
}

criterion_group!(benches, decider_scale, window_recording, loop_pass);
criterion_main!(benches);
