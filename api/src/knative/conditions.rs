//! Knative's duck-typed conditions and condition sets: each object has dependent conditions
//! and a `Ready` condition that is `True` only when all of them are, `False` as soon as one is,
//! and `Unknown` otherwise (with the reason and message of the condition that decided it).

use serde::{Deserialize, Serialize};

use super::condition_types::READY;

/// `True`, `False` or `Unknown`, spelt as Kubernetes spells them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}

/// One `status.conditions[]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// RFC 3339; moves only when `status` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Condition {
    pub fn new(type_: &str, status: ConditionStatus) -> Self {
        Self {
            type_: type_.to_owned(),
            status,
            ..Self::default()
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }

    /// The same condition with a reason and a message.
    pub fn because(mut self, reason: &str, message: impl Into<String>) -> Self {
        self.reason = Some(reason.to_owned());
        self.message = Some(message.into());
        self
    }
}

/// The condition of `type_` in `conditions`, if set.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(Condition::is_true)
}

/// Sets `condition` in `conditions`, keeping the previous `lastTransitionTime` when its status
/// did not change (so rewriting the same status is not a transition) and stamping `now`
/// otherwise. Conditions stay sorted by type, `Ready` first, as Knative orders them, so two
/// writers computing the same set produce the same JSON.
pub fn set(conditions: &mut Vec<Condition>, mut condition: Condition, now: &str) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            condition.last_transition_time = if existing.status == condition.status {
                existing.last_transition_time.clone()
            } else {
                Some(now.to_owned())
            };
            *existing = condition;
        }
        None => {
            condition.last_transition_time = Some(now.to_owned());
            conditions.push(condition);
        }
    }
    conditions.sort_by(|a, b| (a.type_ != READY, &a.type_).cmp(&(b.type_ != READY, &b.type_)));
}

/// Sets the `Ready` condition from the `dependents` (in order of precedence): `False` from the
/// first false one, else `Unknown` from the first that is not yet `True` (missing counts as
/// `Unknown`), else `True`.
pub fn set_ready(conditions: &mut Vec<Condition>, dependents: &[&str], now: &str) {
    let ready = ready_from(conditions, dependents);
    set(conditions, ready, now);
}

/// The `Ready` condition `dependents` imply (see [`set_ready`]).
pub fn ready_from(conditions: &[Condition], dependents: &[&str]) -> Condition {
    let lookup = |type_: &&str| {
        get(conditions, type_)
            .cloned()
            .unwrap_or_else(|| Condition::new(type_, ConditionStatus::Unknown))
    };
    let states: Vec<Condition> = dependents.iter().map(lookup).collect();
    let deciding = states
        .iter()
        .find(|c| c.status == ConditionStatus::False)
        .or_else(|| states.iter().find(|c| c.status == ConditionStatus::Unknown));
    match deciding {
        Some(c) => Condition {
            type_: READY.to_owned(),
            status: c.status,
            severity: None,
            last_transition_time: None,
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
        None => Condition::new(READY, ConditionStatus::True),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";
    const LATER: &str = "2026-01-01T00:01:00Z";

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            Condition::new("A", ConditionStatus::Unknown),
            NOW,
        );
        set(
            &mut conditions,
            Condition::new("A", ConditionStatus::Unknown).because("Waiting", "still"),
            LATER,
        );
        assert_eq!(conditions[0].last_transition_time.as_deref(), Some(NOW));
        assert_eq!(conditions[0].reason.as_deref(), Some("Waiting"));
        set(
            &mut conditions,
            Condition::new("A", ConditionStatus::True),
            LATER,
        );
        assert_eq!(conditions[0].last_transition_time.as_deref(), Some(LATER));
    }

    #[test]
    fn ready_is_false_first_then_unknown_then_true() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            Condition::new("A", ConditionStatus::True),
            NOW,
        );
        set_ready(&mut conditions, &["A", "B"], NOW);
        assert_eq!(
            get(&conditions, READY).map(|c| c.status),
            Some(ConditionStatus::Unknown)
        );
        set(
            &mut conditions,
            Condition::new("B", ConditionStatus::False).because("Broken", "it broke"),
            NOW,
        );
        set_ready(&mut conditions, &["A", "B"], NOW);
        let ready = get(&conditions, READY).cloned().unwrap_or_default();
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason.as_deref(), Some("Broken"));
        assert_eq!(ready.message.as_deref(), Some("it broke"));
        set(
            &mut conditions,
            Condition::new("B", ConditionStatus::True),
            NOW,
        );
        set_ready(&mut conditions, &["A", "B"], NOW);
        assert!(is_true(&conditions, READY));
        assert_eq!(conditions[0].type_, READY, "Ready sorts first");
    }
}
