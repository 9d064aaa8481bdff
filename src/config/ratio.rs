//! Shares between 0 and 1 (`safety.max_deprovision_ratio`, `max_bad_row_ratio`),
//! held exactly as the decimal fraction the config wrote, so that a limit's
//! boundary is compared in integers: with 0.29 of 100 users, 29 is within the
//! limit, as the rule "more than" says (in binary floating point,
//! `0.29 * 100.0` is 28.999999999999996 and 29 would count as more).

use std::fmt;

/// A share between 0 and 1, as the decimal `numerator / 10^scale` in its
/// shortest form (so equal shares are equal values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    numerator: u128,
    scale: u32,
}

/// Decimal places kept: 10^18 < 2^60, so with counts below 2^64 every
/// product below fits in 128 bits; a share under 10^-18 means none.
const MAX_SCALE: u32 = 18;

impl Ratio {
    /// 0.10, the default `safety.max_deprovision_ratio`.
    pub const TEN_PERCENT: Ratio = Ratio {
        numerator: 1,
        scale: 1,
    };
    /// 0.05, the default `safety.max_bad_row_ratio`.
    pub const FIVE_PERCENT: Ratio = Ratio {
        numerator: 5,
        scale: 2,
    };

    /// The ratio that reads as `x` (its shortest decimal form, as written in
    /// the config); `None` outside 0..=1 or for NaN.
    pub fn from_f64(x: f64) -> Option<Ratio> {
        if !(0.0..=1.0).contains(&x) {
            return None;
        }
        // `Display` of an f64 is the shortest decimal that reads back as the
        // same number, never in exponent form: "0.29", "1", "0.0000001".
        Ratio::parse_decimal(&x.to_string())
    }

    /// A plain decimal such as `0.05` or `1`; `None` for anything else.
    fn parse_decimal(text: &str) -> Option<Ratio> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let fraction = &fraction[..fraction.len().min(MAX_SCALE as usize)];
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) {
            return None;
        }
        let scale = fraction.len() as u32;
        let numerator: u128 = format!("{whole}{fraction}").parse().ok()?;
        (numerator <= 10u128.pow(scale)).then_some(Ratio { numerator, scale })
    }

    /// Whether `part` is more than this share of `whole`, exactly.
    pub fn exceeded_by(self, part: usize, whole: usize) -> bool {
        part as u128 * 10u128.pow(self.scale) > self.numerator * whole as u128
    }

    /// The ratio as a float, for messages.
    pub fn as_f64(self) -> f64 {
        self.numerator as f64 / 10f64.powi(self.scale as i32)
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::Ratio;

    #[test]
    fn the_boundary_is_within_the_limit_for_values_not_exact_in_binary() {
        for (ratio, whole, at_limit) in [
            (0.29, 100, 29),
            (0.07, 100, 7),
            (0.1, 30, 3),
            (0.3, 10, 3),
            (0.05, 20, 1),
            (0.57, 100, 57),
            (1.0, 7, 7),
            (0.0, 9, 0),
        ] {
            let r = Ratio::from_f64(ratio).unwrap();
            assert!(
                !r.exceeded_by(at_limit, whole),
                "{ratio} of {whole}: {at_limit} is within"
            );
            assert!(
                r.exceeded_by(at_limit + 1, whole),
                "{ratio} of {whole}: {} is more",
                at_limit + 1
            );
        }
    }

    #[test]
    fn only_shares_between_zero_and_one() {
        assert!(Ratio::from_f64(1.5).is_none());
        assert!(Ratio::from_f64(-0.1).is_none());
        assert!(Ratio::from_f64(f64::NAN).is_none());
        assert_eq!(Ratio::from_f64(0.25).unwrap().to_string(), "0.25");
        assert_eq!(Ratio::from_f64(0.10), Some(Ratio::TEN_PERCENT));
        assert_eq!(Ratio::from_f64(0.05), Some(Ratio::FIVE_PERCENT));
    }

    proptest! {
        /// An independent model: a share of k/1000 compared by cross-multiplying.
        #[test]
        fn compares_like_exact_fractions(k in 0u32..=1000, part in 0usize..5000, whole in 0usize..5000) {
            let r = Ratio::from_f64(f64::from(k) / 1000.0).unwrap();
            prop_assert_eq!(r.exceeded_by(part, whole), part as u64 * 1000 > u64::from(k) * whole as u64);
        }

    }
}
