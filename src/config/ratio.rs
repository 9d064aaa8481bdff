//! Shares as the config writes them (`0.05` = 5 %), held exactly so that limits
//! compare in integers: `0.29` of 100 rows is 29 rows, where the float product
//! `0.29 * 100.0` is 28.999… and would make the 29th row one too many.

use std::fmt;

/// Parts per billion in the whole: the finest share a [`Ratio`] holds.
const SCALE: u64 = 1_000_000_000;

/// A share between 0 and 1 with at most [`Ratio::DECIMALS`] decimal places,
/// held exactly (as parts per billion).
///
/// ```
/// use liaison::config::Ratio;
///
/// let limit = Ratio::parse("0.29").unwrap();
/// assert!(!limit.exceeded_by(29, 100));
/// assert!(limit.exceeded_by(30, 100));
/// assert_eq!(limit.to_string(), "0.29");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ratio {
    /// The share times [`SCALE`]: 0 ..= 1e9.
    ppb: u32,
}

/// Why a text is not a [`Ratio`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatioError {
    /// Not a plain decimal number between 0 and 1.
    #[error("expected a number between 0 and 1 (0.10 = 10 %)")]
    NotAShare,
    /// More decimal places than a ratio holds.
    #[error("at most {} decimal places", Ratio::DECIMALS)]
    TooPrecise,
}

impl Ratio {
    /// Decimal places a ratio holds exactly.
    pub const DECIMALS: u32 = 9;

    /// `percent` % (at most 100), for defaults written in code.
    pub const fn percent(percent: u8) -> Ratio {
        let percent = if percent > 100 { 100 } else { percent };
        Ratio {
            ppb: percent as u32 * (SCALE / 100) as u32,
        }
    }

    /// Parses a plain decimal between 0 and 1: `0`, `1`, `0.05`, `1.0`, `.5`
    /// (no sign, exponent or percent sign), with at most [`Ratio::DECIMALS`]
    /// decimal places.
    pub fn parse(text: &str) -> Result<Ratio, RatioError> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
            return Err(RatioError::NotAShare);
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > Self::DECIMALS as usize {
            return Err(RatioError::TooPrecise);
        }
        let whole = whole.trim_start_matches('0');
        let ppb = match whole {
            "" => 0,
            "1" => SCALE,
            _ => return Err(RatioError::NotAShare),
        };
        let mut parts = 0u64;
        for (i, digit) in fraction.bytes().enumerate() {
            parts += u64::from(digit - b'0') * 10u64.pow(Self::DECIMALS - 1 - i as u32);
        }
        match u32::try_from(ppb + parts) {
            Ok(ppb) if u64::from(ppb) <= SCALE => Ok(Ratio { ppb }),
            _ => Err(RatioError::NotAShare),
        }
    }

    /// Whether `count` out of `base` is more than this share, compared exactly
    /// (`count / base > ratio`, multiplied out in integers). With `base` 0,
    /// any `count` above 0 exceeds it.
    pub fn exceeded_by(self, count: usize, base: usize) -> bool {
        let count = count as u128 * u128::from(SCALE);
        let allowed = u128::from(self.ppb) * base as u128;
        count > allowed
    }

    /// The share as a float, for display only (never to compare).
    pub fn as_f64(self) -> f64 {
        f64::from(self.ppb) / SCALE as f64
    }
}

impl fmt::Display for Ratio {
    /// The shortest decimal: `0.29`, `1`, `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ppb = u64::from(self.ppb);
        let (whole, fraction) = (ppb / SCALE, ppb % SCALE);
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:09}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_plain_decimals_between_zero_and_one() {
        for (text, shown) in [
            ("0", "0"),
            ("1", "1"),
            ("1.0", "1"),
            ("0.05", "0.05"),
            (".5", "0.5"),
            ("0.290", "0.29"),
            ("000.1", "0.1"),
            ("0.000000001", "0.000000001"),
        ] {
            assert_eq!(Ratio::parse(text).unwrap().to_string(), shown, "{text}");
        }
        for bad in [
            "",
            ".",
            "-0.1",
            "1.5",
            "2",
            "1.000000001",
            "0.1.2",
            "5%",
            "1e-2",
            " 0.1",
        ] {
            assert_eq!(Ratio::parse(bad), Err(RatioError::NotAShare), "{bad:?}");
        }
        assert_eq!(Ratio::parse("0.0000000001"), Err(RatioError::TooPrecise));
        assert_eq!(Ratio::percent(10), Ratio::parse("0.1").unwrap());
        assert_eq!(Ratio::percent(200), Ratio::parse("1").unwrap());
    }

    #[test]
    fn boundaries_are_exact_where_floats_are_not() {
        // 0.29 * 100.0 == 28.999999999999996 and 0.57 * 100.0 == 56.99999999999999.
        for (text, base, at) in [("0.29", 100, 29), ("0.57", 100, 57), ("0.07", 100, 7)] {
            let r = Ratio::parse(text).unwrap();
            assert!(!r.exceeded_by(at, base), "{text}: {at} of {base}");
            assert!(r.exceeded_by(at + 1, base), "{text}: {} of {base}", at + 1);
        }
        let tenth = Ratio::parse("0.1").unwrap();
        assert!(!tenth.exceeded_by(usize::MAX / 10, usize::MAX));
        assert!(!Ratio::percent(0).exceeded_by(0, 0));
        assert!(Ratio::percent(0).exceeded_by(1, 0));
        assert!(!Ratio::percent(100).exceeded_by(5, 5));
    }

    proptest! {
        /// Against exact rational arithmetic: count/base > n/10^k.
        #[test]
        fn exceeded_by_is_the_exact_comparison(
            numerator in 0u64..=1000, k in 0u32..=3, count in 0usize..5000, base in 0usize..5000
        ) {
            let denominator = 10u64.pow(k);
            prop_assume!(numerator <= denominator);
            let text = format!("{}", numerator as f64 / denominator as f64);
            let r = Ratio::parse(&text).unwrap();
            let expected = count as u128 * denominator as u128 > numerator as u128 * base as u128;
            prop_assert_eq!(r.exceeded_by(count, base), expected);
            prop_assert_eq!(Ratio::parse(&r.to_string()), Ok(r));
        }
    }
}
