//! What redeeming a set-password token found (SPEC §4).

use crate::model::UserId;

/// The outcome of [`super::Store::redeem_password_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// The token was good: this user's password is now set and the token used.
    Valid(UserId),
    /// No token has this hash.
    Unknown,
    /// The token was used already, or revoked by a later password set.
    Used,
    /// The token's time ran out.
    Expired,
}
