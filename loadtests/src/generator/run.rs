//! The I/O of a run: pacing requests (open or closed loop), sending them through the pool, and
//! waiting — bounded by the grace — for the ones still in flight at the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::live::LiveSink;
use super::pool::{Pool, Protocol};
use super::{GeneratorError, Load, Mode, Outcome, RateShape, Timeline};
use crate::target::Target;

/// Runs `load` to its end (its duration or request count, then at most its grace for requests
/// still in flight) and returns what it measured. Failed requests are counted, never fatal.
pub async fn run(load: &Load) -> Result<Timeline, GeneratorError> {
    run_with(load, None).await
}

/// [`run`], also recording every request into `live` as it leaves and as its outcome arrives,
/// so a progress display can read the last whole second while the load runs.
pub async fn run_live(load: &Load, live: &LiveSink) -> Result<Timeline, GeneratorError> {
    run_with(load, Some(live.clone())).await
}

async fn run_with(load: &Load, live: Option<LiveSink>) -> Result<Timeline, GeneratorError> {
    load.validate()?;
    let (give_up, give_up_signal) = watch::channel(false);
    let shared = Arc::new(Shared {
        pool: Pool::new(load.target.addr, load.protocol),
        target: load.target.clone(),
        protocol: load.protocol,
        request_timeout: load.request_timeout,
        give_up: give_up_signal,
        timeline: Mutex::new(Timeline::new()),
        live,
    });
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let load_end = match &load.mode {
        Mode::Open {
            shape,
            max_in_flight,
        } => open_loop(load, shape, *max_in_flight, &shared, start, &mut tasks).await,
        Mode::Closed { workers } => closed_loop(load, *workers, &shared, start, &mut tasks).await,
    };
    let _ = tokio::time::timeout_at(load_end + load.grace, drain(&mut tasks)).await;
    // Whatever is still in flight records itself as a timeout and ends.
    let _ = give_up.send(true);
    drain(&mut tasks).await;
    drop(tasks);
    let mut timeline = match Arc::try_unwrap(shared) {
        Ok(shared) => shared
            .timeline
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
        Err(shared) => lock(&shared.timeline).clone(),
    };
    timeline.finish(load_end.saturating_duration_since(start));
    Ok(timeline)
}

/// What every request task needs.
struct Shared {
    pool: Pool,
    target: Target,
    protocol: Protocol,
    request_timeout: Duration,
    give_up: watch::Receiver<bool>,
    timeline: Mutex<Timeline>,
    live: Option<LiveSink>,
}

impl Shared {
    /// A request leaves (or, dropped, would have).
    fn released(&self) {
        if let Some(live) = &self.live {
            live.sent();
        }
    }

    /// The outcome of the request due `at` after the start.
    fn record(&self, at: Duration, outcome: Outcome) {
        if let Some(live) = &self.live {
            live.finished(&outcome);
        }
        lock(&self.timeline).record(at, outcome);
    }
}

fn lock(timeline: &Mutex<Timeline>) -> std::sync::MutexGuard<'_, Timeline> {
    // A panicking recorder cannot leave a timeline half-updated in a way that matters more
    // than losing the whole run would.
    timeline
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Releases requests on `shape`'s schedule; returns when the load ends.
async fn open_loop(
    load: &Load,
    shape: &RateShape,
    max_in_flight: usize,
    shared: &Arc<Shared>,
    start: Instant,
    tasks: &mut JoinSet<()>,
) -> Instant {
    let in_flight = Arc::new(Semaphore::new(max_in_flight.min(Semaphore::MAX_PERMITS)));
    let mut cut_by_count = false;
    for (released, offset) in (0u64..).zip(shape.schedule()) {
        if load.max_requests.is_some_and(|max| released >= max) {
            cut_by_count = true;
            break;
        }
        if load.duration.is_some_and(|duration| offset >= duration) {
            break;
        }
        let due = start + offset;
        tokio::time::sleep_until(due).await;
        // Finished tasks are reaped as we go, so a long run holds only the ones in flight.
        while tasks.try_join_next().is_some() {}
        shared.released();
        match in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                let shared = shared.clone();
                tasks.spawn(async move {
                    let outcome = one_request(&shared, due).await;
                    shared.record(offset, outcome);
                    drop(permit);
                });
            }
            Err(_) => shared.record(offset, Outcome::Dropped),
        }
    }
    // A run cut short by its count ends with its last request; otherwise it lasts its duration,
    // even through a stretch of zero rate at the end.
    match load.duration {
        Some(duration) if !cut_by_count => {
            tokio::time::sleep_until(start + duration).await;
            start + duration
        }
        _ => Instant::now(),
    }
}

/// Starts `workers` loops that each send the next request once the previous one answered;
/// returns when the duration is over or every worker has stopped (count reached).
async fn closed_loop(
    load: &Load,
    workers: usize,
    shared: &Arc<Shared>,
    start: Instant,
    tasks: &mut JoinSet<()>,
) -> Instant {
    let remaining = Arc::new(std::sync::atomic::AtomicU64::new(
        load.max_requests.unwrap_or(u64::MAX),
    ));
    let stop_at = load.duration.map(|duration| start + duration);
    for _ in 0..workers {
        let (shared, remaining) = (shared.clone(), remaining.clone());
        tasks.spawn(async move {
            while !*shared.give_up.borrow() && stop_at.is_none_or(|stop| Instant::now() < stop) {
                let claimed = remaining.fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |left| left.checked_sub(1),
                );
                if claimed.is_err() {
                    break;
                }
                let due = Instant::now();
                shared.released();
                let outcome = one_request(&shared, due).await;
                shared.record(due.saturating_duration_since(start), outcome);
            }
        });
    }
    match stop_at {
        Some(stop) => tokio::select! {
            () = tokio::time::sleep_until(stop) => stop,
            () = drain(tasks) => Instant::now(),
        },
        None => {
            drain(tasks).await;
            Instant::now()
        }
    }
}

/// One request, due at `due`: its latency counts from then, and so does its timeout.
async fn one_request(shared: &Shared, due: Instant) -> Outcome {
    let Ok(request) = request(&shared.target, shared.protocol) else {
        return Outcome::TransportError;
    };
    let mut give_up = shared.give_up.clone();
    let deadline = due + shared.request_timeout;
    tokio::select! {
        result = tokio::time::timeout_at(deadline, shared.pool.send(request)) => match result {
            Ok(Ok(status)) => Outcome::Answered { status, latency: due.elapsed() },
            Ok(Err(_)) => Outcome::TransportError,
            Err(_) => Outcome::Timeout,
        },
        _ = give_up.wait_for(|stop| *stop) => Outcome::Timeout,
    }
}

/// The `GET` for `target`: origin-form with a Host header over HTTP/1.1; over h2c the host goes
/// in the URI, which becomes the `:authority` pseudo-header.
pub(super) fn request(
    target: &Target,
    protocol: Protocol,
) -> Result<Request<Empty<Bytes>>, http::Error> {
    match protocol {
        Protocol::Http1 => Request::get(target.path.as_str())
            .header(http::header::HOST, target.host.as_str())
            .body(Empty::new()),
        Protocol::H2c { .. } => Request::get(format!("http://{}{}", target.host, target.path))
            .version(http::Version::HTTP_2)
            .body(Empty::new()),
    }
}

async fn drain(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_host_header_or_authority() {
        let mut target = Target::parse("http://127.0.0.1:8080/hello?x=1").unwrap();
        target.host = "hello.default.example.com".to_owned();
        let h1 = request(&target, Protocol::Http1).unwrap();
        assert_eq!(h1.uri(), "/hello?x=1");
        assert_eq!(
            h1.headers()[http::header::HOST],
            "hello.default.example.com"
        );
        let h2 = request(&target, Protocol::H2c { connections: 1 }).unwrap();
        assert_eq!(h2.uri(), "http://hello.default.example.com/hello?x=1");
        target.host = "bad host".to_owned();
        assert!(request(&target, Protocol::H2c { connections: 1 }).is_err());
    }
}
