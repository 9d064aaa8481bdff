//! The safety guard: a run that would deprovision too many users applies its
//! creations and updates but holds every disable and delete.

use super::{Held, Plan};

/// The limits a plan is checked against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardLimits {
    /// At most this many disables + deletes (`safety.max_deprovision`).
    pub max_deprovision: u32,
    /// At most this share of `active_before` (`safety.max_deprovision_ratio`).
    pub max_deprovision_ratio: f64,
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
        && count as f64 > limits.max_deprovision_ratio * limits.active_before as f64
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
