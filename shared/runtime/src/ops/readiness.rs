//! Readiness: named conditions the service sets; ready only when all of them hold.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// Named conditions such as "capture handle open" or "broker reachable".
/// A condition that was declared but never set counts as not met.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    conditions: Arc<Mutex<BTreeMap<String, Condition>>>,
    /// Named warnings: shown by `/ready`, which stays 200 for them.
    warnings: Arc<Mutex<BTreeMap<String, String>>>,
}

#[derive(Debug, Clone)]
enum Condition {
    Met,
    NotMet(Option<String>),
}

/// What `/ready` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    pub ready: bool,
    /// One entry per unmet condition: `"broker reachable: connection refused"`.
    pub reasons: Vec<String>,
    /// Conditions that do not stop readiness but an operator must know about
    /// (`"broker durability: ..."`); left out of the JSON when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Readiness {
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Declares conditions that must be met before the service is ready (initially not met).
    pub fn declare(&self, names: &[&str]) {
        let mut conditions = self.lock();
        for name in names {
            conditions
                .entry((*name).to_string())
                .or_insert(Condition::NotMet(None));
        }
    }

    /// Marks a condition met.
    pub fn set_met(&self, name: &str) {
        self.lock().insert(name.to_string(), Condition::Met);
    }

    /// Marks a condition not met, with why (shown in `/ready`).
    pub fn set_not_met(&self, name: &str, why: impl Into<String>) {
        self.lock()
            .insert(name.to_string(), Condition::NotMet(Some(why.into())));
    }

    /// Sets a condition from a boolean.
    pub fn set(&self, name: &str, met: bool) {
        let value = if met {
            Condition::Met
        } else {
            Condition::NotMet(None)
        };
        self.lock().insert(name.to_string(), value);
    }

    /// Sets (or replaces) a warning; `/ready` stays 200 and lists it.
    pub fn set_warning(&self, name: &str, why: impl Into<String>) {
        self.lock_warnings().insert(name.to_string(), why.into());
    }

    pub fn clear_warning(&self, name: &str) {
        self.lock_warnings().remove(name);
    }

    pub fn is_met(&self, name: &str) -> bool {
        matches!(self.lock().get(name), Some(Condition::Met))
    }

    pub fn report(&self) -> ReadinessReport {
        let conditions = self.lock();
        let reasons: Vec<String> = conditions
            .iter()
            .filter_map(|(name, condition)| match condition {
                Condition::Met => None,
                Condition::NotMet(None) => Some(format!("{name}: not yet")),
                Condition::NotMet(Some(why)) => Some(format!("{name}: {why}")),
            })
            .collect();
        drop(conditions);
        let warnings = self
            .lock_warnings()
            .iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect();
        ReadinessReport {
            ready: reasons.is_empty(),
            reasons,
            warnings,
        }
    }

    fn lock_warnings(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.warnings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Condition>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.conditions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_declared_condition_is_met() {
        let readiness = Readiness::new();
        readiness.declare(&["capture handle open", "broker reachable"]);
        let report = readiness.report();
        assert!(!report.ready);
        assert_eq!(report.reasons.len(), 2);
        readiness.set_met("capture handle open");
        readiness.set_not_met("broker reachable", "connection refused");
        assert_eq!(
            readiness.report().reasons,
            vec!["broker reachable: connection refused".to_string()]
        );
        readiness.set_met("broker reachable");
        assert!(readiness.report().ready);
    }

    #[test]
    fn warnings_are_reported_without_stopping_readiness() {
        let readiness = Readiness::new();
        readiness.declare(&["broker"]);
        readiness.set_met("broker");
        readiness.set_warning("broker durability", "no AOF");
        let report = readiness.report();
        assert!(report.ready);
        assert_eq!(
            report.warnings,
            vec!["broker durability: no AOF".to_string()]
        );
        readiness.clear_warning("broker durability");
        assert!(readiness.report().warnings.is_empty());
    }
}
