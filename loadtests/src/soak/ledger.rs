//! What became of every request of a soak: each one's outcome, judged against what its Service
//! expects and against the outage of the killed `wisp up`. Pure bookkeeping.
//!
//! The rule: a request is *lost* unless it got what its Service expects (a 2xx, or for a
//! hostile Service any HTTP answer) or the kill explains its failure — it was in flight in the
//! killed process (sent before the kill, failed without an answer after it), or it was sent
//! while no `wisp up` was running (from the kill until the restarted one announced itself).
//! A soak passes only with zero lost requests.

use std::collections::BTreeMap;
use std::time::Duration;

use super::plan::Expect;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No connection: nothing listened (or the connect failed).
    Refused,
    /// The connection broke before a whole answer.
    Broken,
    /// No answer within the client's timeout.
    TimedOut,
    /// Not sent: too many of the stream's requests were still unanswered.
    Dropped,
}

impl Outcome {
    fn answered(self) -> bool {
        matches!(self, Outcome::Status(_))
    }
}

/// One request, on the run's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// When it was due (open loop: the schedule's instant, whether or not it left on time).
    pub due: Duration,
    /// When its outcome was known.
    pub ended: Duration,
    pub outcome: Outcome,
}

/// When `wisp up` was down: from the kill until the restarted process announced its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub killed: Duration,
    pub back: Duration,
}

/// What a request counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It got what its Service expects.
    Delivered,
    /// In flight in the killed process: sent before the kill, no answer after it.
    CutByKill,
    /// Sent while no `wisp up` ran.
    SentWhileDown,
    /// Everything else: a failure nothing excuses.
    Lost,
}

/// The verdict on `request` for a Service that expects `expect`, given the run's outage.
pub fn judge(request: &Request, expect: Expect, outage: Option<Outage>) -> Verdict {
    let delivered = match (request.outcome, expect) {
        (Outcome::Status(status), Expect::Success) => (200..300).contains(&status),
        (outcome, Expect::Failures) => outcome.answered(),
        _ => false,
    };
    if delivered {
        return Verdict::Delivered;
    }
    let Some(outage) = outage else {
        return Verdict::Lost;
    };
    if request.outcome.answered() {
        // An answer came from a running process, which must get it right whatever happened.
        return Verdict::Lost;
    }
    if request.due < outage.killed && request.ended >= outage.killed {
        Verdict::CutByKill
    } else if (outage.killed..outage.back).contains(&request.due) {
        Verdict::SentWhileDown
    } else {
        Verdict::Lost
    }
}

/// The requests of one stream, counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub sent: u64,
    pub delivered: u64,
    pub cut_by_kill: u64,
    pub sent_while_down: u64,
    pub lost: u64,
    /// Answers by status, and the other outcomes by name.
    pub outcomes: BTreeMap<String, u64>,
    /// The first lost requests, for the report.
    pub lost_examples: Vec<Request>,
    /// Latency (from due to answer) of the delivered requests, sorted.
    latencies: Vec<Duration>,
}

/// How many lost requests a tally keeps as examples.
const EXAMPLES: usize = 10;

impl Tally {
    /// Counts `requests` of a Service that expects `expect`.
    pub fn of(requests: &[Request], expect: Expect, outage: Option<Outage>) -> Self {
        let mut tally = Tally::default();
        for request in requests {
            tally.sent += 1;
            *tally
                .outcomes
                .entry(outcome_name(request.outcome))
                .or_default() += 1;
            match judge(request, expect, outage) {
                Verdict::Delivered => {
                    tally.delivered += 1;
                    tally
                        .latencies
                        .push(request.ended.saturating_sub(request.due));
                }
                Verdict::CutByKill => tally.cut_by_kill += 1,
                Verdict::SentWhileDown => tally.sent_while_down += 1,
                Verdict::Lost => {
                    tally.lost += 1;
                    if tally.lost_examples.len() < EXAMPLES {
                        tally.lost_examples.push(*request);
                    }
                }
            }
        }
        tally.latencies.sort_unstable();
        tally
    }

    /// The latency below which `quantile` of the delivered requests answered.
    pub fn latency(&self, quantile: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = ((quantile * self.latencies.len() as f64).ceil() as usize).max(1);
        self.latencies.get(rank - 1).copied()
    }

    /// Adds `other`'s counts (examples and latencies too).
    pub fn absorb(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.cut_by_kill += other.cut_by_kill;
        self.sent_while_down += other.sent_while_down;
        self.lost += other.lost;
        for (name, count) in &other.outcomes {
            *self.outcomes.entry(name.clone()).or_default() += count;
        }
        let room = EXAMPLES.saturating_sub(self.lost_examples.len());
        self.lost_examples
            .extend(other.lost_examples.iter().take(room).copied());
        self.latencies.extend(&other.latencies);
        self.latencies.sort_unstable();
    }
}

/// `200`, `503`, `refused`, `broken`, `timed out` or `dropped`.
pub fn outcome_name(outcome: Outcome) -> String {
    match outcome {
        Outcome::Status(status) => status.to_string(),
        Outcome::Refused => "refused".to_owned(),
        Outcome::Broken => "broken".to_owned(),
        Outcome::TimedOut => "timed out".to_owned(),
        Outcome::Dropped => "dropped".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(due: u64, ended: u64, outcome: Outcome) -> Request {
        Request {
            due: Duration::from_secs(due),
            ended: Duration::from_secs(ended),
            outcome,
        }
    }

    const OUTAGE: Option<Outage> = Some(Outage {
        killed: Duration::from_secs(10),
        back: Duration::from_secs(13),
    });

    #[test]
    fn only_the_kill_excuses_a_failure() {
        let success = Expect::Success;
        assert_eq!(
            judge(&at(1, 1, Outcome::Status(200)), success, OUTAGE),
            Verdict::Delivered
        );
        assert_eq!(
            judge(&at(9, 10, Outcome::Broken), success, OUTAGE),
            Verdict::CutByKill
        );
        assert_eq!(
            judge(&at(11, 11, Outcome::Refused), success, OUTAGE),
            Verdict::SentWhileDown
        );
        // Before the kill, after the restart, or answered wrongly by a live process: lost.
        assert_eq!(
            judge(&at(5, 6, Outcome::Broken), success, OUTAGE),
            Verdict::Lost
        );
        assert_eq!(
            judge(&at(14, 14, Outcome::Refused), success, OUTAGE),
            Verdict::Lost
        );
        assert_eq!(
            judge(&at(12, 14, Outcome::Status(503)), success, OUTAGE),
            Verdict::Lost
        );
        assert_eq!(
            judge(&at(11, 11, Outcome::Refused), success, None),
            Verdict::Lost
        );
    }

    #[test]
    fn a_hostile_service_needs_an_answer_not_a_success() {
        let hostile = Expect::Failures;
        assert_eq!(
            judge(&at(1, 2, Outcome::Status(500)), hostile, None),
            Verdict::Delivered
        );
        assert_eq!(
            judge(&at(1, 31, Outcome::TimedOut), hostile, None),
            Verdict::Lost
        );
        assert_eq!(
            judge(&at(1, 1, Outcome::Dropped), hostile, None),
            Verdict::Lost
        );
    }

    #[test]
    fn tallies_count_and_keep_examples() {
        let requests = [
            at(1, 1, Outcome::Status(200)),
            at(2, 4, Outcome::Status(200)),
            at(9, 10, Outcome::Broken),
            at(11, 11, Outcome::Refused),
            at(20, 20, Outcome::Status(404)),
        ];
        let mut tally = Tally::of(&requests, Expect::Success, OUTAGE);
        assert_eq!(
            (
                tally.sent,
                tally.delivered,
                tally.cut_by_kill,
                tally.sent_while_down,
                tally.lost
            ),
            (5, 2, 1, 1, 1)
        );
        assert_eq!(tally.outcomes["200"], 2);
        assert_eq!(tally.outcomes["404"], 1);
        assert_eq!(tally.lost_examples, [requests[4]]);
        assert_eq!(tally.latency(0.5), Some(Duration::ZERO));
        assert_eq!(tally.latency(0.99), Some(Duration::from_secs(2)));
        let other = tally.clone();
        tally.absorb(&other);
        assert_eq!((tally.sent, tally.lost), (10, 2));
        assert_eq!(tally.lost_examples.len(), 2);
    }
}
