//! Reconciliation: from a source's records and the store's current state to a
//! [`Plan`] — correlate, diff, guard — as a pure, deterministic function.
//!
//! Nothing here does I/O or reads the clock: the caller loads the relevant
//! [`State`] from the store, passes the time in [`PlanOptions`], and applies the
//! returned plan. The same plan is printed by `liaison plan` and applied by
//! `liaison sync`.

mod contact_diff;
mod guard;
mod merge;
mod plan;
mod planner;
mod state;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use guard::{guard, GuardLimits};
pub use merge::{attribute_field, gives, merge_fields, UserFields, ADMIN_FIELDS};
pub use plan::{
    Conflict, ContactChange, Deprovision, DeprovisionAction, FieldChange, Held, NewUser, Plan,
    PlanCounts, UserUpdate,
};
pub use planner::plan;
pub use state::{PlanOptions, SourceInput, State, StoredContact};
