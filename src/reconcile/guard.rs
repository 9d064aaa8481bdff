//! The safety guard: a run that would deprovision too many users applies its
//! creations and updates but holds every disable and delete.

use super::{Held, Plan};
use crate::config::Ratio;

/// The limits a plan is checked against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardLimits {
    /// At most this many disables + deletes (`safety.max_deprovision`).
    pub max_deprovision: u32,
    /// At most this share of `active_before` (`safety.max_deprovision_ratio`).
    pub max_deprovision_ratio: Ratio,
    /// Active users linked to the source before the run.
    pub active_before: usize,
    /// The read was complete but returned no record at all.
    pub source_empty: bool,
    /// `--allow-mass-deprovision`: apply whatever the limits say.
    pub allow_mass_deprovision: bool,
}

/// Moves the plan's deprovisions to `held` when they break a limit, and returns
/// whether it did. A complete read that suddenly returns nothing for a source
/// that had users is always held.
pub fn guard(plan: &mut Plan, limits: &GuardLimits) -> bool {
    let count = plan.deprovisions.len();
    if count == 0 || limits.allow_mass_deprovision {
        return false;
    }
    let reason = if limits.source_empty && limits.active_before > 0 {
        format!(
            "source {:?} returned no records but had {} active users",
            plan.source, limits.active_before
        )
    } else if count > limits.max_deprovision as usize {
        format!(
            "{count} deprovisions exceed safety.max_deprovision = {}",
            limits.max_deprovision
        )
    } else if limits.active_before > 0
        && limits
            .max_deprovision_ratio
            .exceeded_by(count, limits.active_before)
    {
        format!(
            "{count} of {} active users ({:.1} %) exceed safety.max_deprovision_ratio = {}",
            limits.active_before,
            100.0 * count as f64 / limits.active_before as f64,
            limits.max_deprovision_ratio
        )
    } else {
        return false;
    };
    plan.held = std::mem::take(&mut plan.deprovisions)
        .into_iter()
        .map(|deprovision| Held {
            deprovision,
            reason: reason.clone(),
        })
        .collect();
    true
}

#[cfg(test)]
mod tests {
    use super::{guard, GuardLimits};
    use crate::model::{Login, UserId};
    use crate::reconcile::{Deprovision, DeprovisionAction, Plan};

    fn plan_with(deprovisions: usize) -> Plan {
        Plan {
            source: "partners".into(),
            deprovisions: (0..deprovisions)
                .map(|i| Deprovision {
                    user: UserId(i as i64),
                    login: Login::from_trusted(format!("u{i}")),
                    action: DeprovisionAction::Disable,
                    unlinks: Vec::new(),
                })
                .collect(),
            ..Plan::default()
        }
    }

    fn held(deprovisions: usize, ratio: &str, active_before: usize) -> bool {
        let limits = GuardLimits {
            max_deprovision: u32::MAX,
            max_deprovision_ratio: crate::config::Ratio::parse(ratio)
                .unwrap_or_else(|e| panic!("{ratio}: {e}")),
            active_before,
            source_empty: false,
            allow_mass_deprovision: false,
        };
        guard(&mut plan_with(deprovisions), &limits)
    }

    #[test]
    fn the_ratio_boundary_is_exact_for_values_not_exact_in_binary() {
        // "More than" the share: exactly at it is allowed.
        assert!(!held(29, "0.29", 100), "29 of 100 is 0.29, not more");
        assert!(held(30, "0.29", 100));
        assert!(!held(7, "0.07", 100));
        assert!(held(8, "0.07", 100));
        assert!(!held(3, "0.1", 30));
        assert!(held(4, "0.1", 30));
    }

    #[test]
    fn the_absolute_limit_is_more_than_too() {
        let limits = |max| GuardLimits {
            max_deprovision: max,
            max_deprovision_ratio: crate::config::Ratio::parse("1.0").unwrap_or_else(|_| panic!()),
            active_before: 100,
            source_empty: false,
            allow_mass_deprovision: false,
        };
        assert!(!guard(&mut plan_with(50), &limits(50)));
        assert!(guard(&mut plan_with(51), &limits(50)));
    }
}
