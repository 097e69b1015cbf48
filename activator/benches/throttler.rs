//! The fast path: acquiring and releasing a slot when a backend has room (no queueing), per
//! load-balancing policy. Compare runs, not absolute numbers.

use criterion::{Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use wisp_activator::{Backend, NoDemand, Throttler, ThrottlerConfig};

#[derive(Clone)]
struct Fake(u32);

impl Backend for Fake {
    type Id = u32;
    type Request = ();
    type Response = ();
    fn id(&self) -> u32 {
        self.0
    }
    async fn call(&self, _request: ()) {}
}

fn fast_path(c: &mut Criterion) {
    for (name, cc) in [
        ("p2c_cc0", 0),
        ("first_available_cc1", 1),
        ("round_robin_cc10", 10),
    ] {
        let throttler = Throttler::new(
            ThrottlerConfig {
                container_concurrency: cc,
                seed: Some(1),
                ..ThrottlerConfig::default()
            },
            NoDemand,
        );
        throttler.update_backends((0..8).map(Fake));
        c.bench_function(&format!("acquire_release/{name}/8_backends"), |b| {
            b.iter(|| {
                // Admitted on the first poll: no runtime needed.
                let lease = throttler.acquire().now_or_never();
                drop(lease);
            })
        });
    }
}

criterion_group!(benches, fast_path);
criterion_main!(benches);
