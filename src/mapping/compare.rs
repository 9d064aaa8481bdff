//! Comparisons that mean what admins mean: sources give text, so `age > 18`
//! must compare the number the text holds, not rank text above numbers by type
//! as minijinja does (where `"9" > 18` and `"100" > 18` are the same answer).
//!
//! The rule, for `<`, `<=`, `>`, `>=` (operators and the `lt`, `gt`, … tests):
//! - both sides numbers, or text that reads as one (`18`, ` 18 `, `-1.5`,
//!   `1e3`): compared as numbers;
//! - both sides text otherwise: compared as text, as before;
//! - anything else (text that is not a number against a number, a missing
//!   value, none): an error, which makes the record a row error.
//!
//! For `==` and `!=`, a number against text that reads as a number compares the
//! numbers (`age == 18` holds for `"18"`); text against text stays text
//! equality (`"01234" != "1234"`); anything else is plain equality.
//!
//! minijinja's operators cannot be overridden, so comparisons that need the
//! rule are rewritten into a call of [`FUNCTION`] before compiling (see
//! `prepare.rs`); comparisons of text with a string literal, the common case,
//! are left to minijinja.

use std::cmp::Ordering;

use minijinja::machinery::ast::{self, BinOpKind, CompareOpKind, Expr};
use minijinja::value::{Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

/// The global function that rewritten comparisons call:
/// `__liaison_compare(a, "<", b, "<=", c)` is `a < b <= c` under the rule.
/// Record attributes of this name are not visible to templates.
pub(crate) const FUNCTION: &str = "__liaison_compare";

/// An operator of the rule, by its text in a rewritten call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    NotIn,
}

impl Op {
    /// The operator as written in a template.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::In => "in",
            Op::NotIn => "not in",
        }
    }

    fn parse(text: &str) -> Option<Op> {
        [
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Lte,
            Op::Gt,
            Op::Gte,
            Op::In,
            Op::NotIn,
        ]
        .into_iter()
        .find(|op| op.text() == text)
    }

    /// The operator of a comparison node.
    pub(crate) fn of_compare(op: CompareOpKind) -> Op {
        match op {
            CompareOpKind::Eq => Op::Eq,
            CompareOpKind::Ne => Op::Ne,
            CompareOpKind::Lt => Op::Lt,
            CompareOpKind::Lte => Op::Lte,
            CompareOpKind::Gt => Op::Gt,
            CompareOpKind::Gte => Op::Gte,
            CompareOpKind::In => Op::In,
            CompareOpKind::NotIn => Op::NotIn,
        }
    }

    /// The operator of a binary node, if it is a comparison.
    pub(crate) fn of_binop(op: BinOpKind) -> Option<Op> {
        Some(match op {
            BinOpKind::Eq => Op::Eq,
            BinOpKind::Ne => Op::Ne,
            BinOpKind::Lt => Op::Lt,
            BinOpKind::Lte => Op::Lte,
            BinOpKind::Gt => Op::Gt,
            BinOpKind::Gte => Op::Gte,
            BinOpKind::In => Op::In,
            _ => return None,
        })
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Lte | Op::Gt | Op::Gte)
    }
}

/// Registers [`FUNCTION`] and replaces the ordering and equality tests
/// (`gt`, `>`, `lessthan`, `eq`, …) with ones that follow the rule.
pub(crate) fn register(env: &mut Environment<'_>) {
    env.add_function(FUNCTION, compare_chain);
    let tests: [(&[&str], Op); 6] = [
        (&["eq", "equalto", "=="], Op::Eq),
        (&["ne", "!="], Op::Ne),
        (&["lt", "lessthan", "<"], Op::Lt),
        (&["le", "<="], Op::Lte),
        (&["gt", "greaterthan", ">"], Op::Gt),
        (&["ge", ">="], Op::Gte),
    ];
    for (names, op) in tests {
        for name in names {
            env.add_test(*name, move |a: Value, b: Value| compare(&a, op, &b));
        }
    }
}

/// Whether comparing `left` with `right` by `op` needs the rule: always for
/// orderings, for equality only when a side is a number.
pub(crate) fn needs_rule(op: Op, left: &Expr<'_>, right: &Expr<'_>) -> bool {
    match op {
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => true,
        Op::Eq | Op::Ne => gives_number(left) || gives_number(right),
        Op::In | Op::NotIn => false,
    }
}

/// Whether `expr` evidently gives a number: a number literal, arithmetic, or a
/// filter that returns one.
fn gives_number(expr: &Expr<'_>) -> bool {
    const NUMBER_FILTERS: [&str; 7] = ["int", "float", "length", "count", "round", "abs", "sum"];
    match expr {
        Expr::Const(c) => c.value.kind() == ValueKind::Number,
        Expr::UnaryOp(u) => matches!(u.op, ast::UnaryOpKind::Neg),
        Expr::BinOp(b) => matches!(
            b.op,
            BinOpKind::Add
                | BinOpKind::Sub
                | BinOpKind::Mul
                | BinOpKind::Div
                | BinOpKind::FloorDiv
                | BinOpKind::Rem
                | BinOpKind::Pow
        ),
        Expr::Filter(f) => NUMBER_FILTERS.contains(&f.name),
        _ => false,
    }
}

/// `__liaison_compare(a, op, b, op, c, …)`: a chained comparison under the rule.
fn compare_chain(args: Rest<Value>) -> Result<bool, Error> {
    let mut args = args.0.iter();
    let Some(mut left) = args.next() else {
        return Err(bad_call());
    };
    while let Some(op) = args.next() {
        let op = op.as_str().and_then(Op::parse).ok_or_else(bad_call)?;
        let right = args.next().ok_or_else(bad_call)?;
        if !compare(left, op, right)? {
            return Ok(false);
        }
        left = right;
    }
    Ok(true)
}

fn bad_call() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{FUNCTION} takes a value, then operators and values in turn"),
    )
}

/// `left op right` under the rule.
pub(crate) fn compare(left: &Value, op: Op, right: &Value) -> Result<bool, Error> {
    match op {
        Op::In | Op::NotIn => {
            let contained = contains(right, left)?;
            return Ok(contained == (op == Op::In));
        }
        Op::Eq | Op::Ne => return Ok(equal(left, right) == (op == Op::Eq)),
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => {}
    }
    debug_assert!(op.is_ordering());
    let ordering = match (number(left), number(right)) {
        (Some(a), Some(b)) => a.cmp(b),
        _ if comparable_as_they_are(left, right) => left.cmp(right),
        _ => return Err(incomparable(left, op, right)),
    };
    Ok(match op {
        Op::Lt => ordering == Ordering::Less,
        Op::Lte => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        _ => ordering != Ordering::Less,
    })
}

/// Equality under the rule: a number and text that reads as one are equal
/// when the numbers are.
fn equal(left: &Value, right: &Value) -> bool {
    let one_is_a_number = left.kind() == ValueKind::Number || right.kind() == ValueKind::Number;
    match (one_is_a_number, number(left), number(right)) {
        (true, Some(a), Some(b)) => a.cmp(b) == Ordering::Equal,
        _ => left == right,
    }
}

/// Text with text, or two lists, or two booleans: minijinja's own ordering
/// means something there.
fn comparable_as_they_are(left: &Value, right: &Value) -> bool {
    let kind = left.kind();
    kind == right.kind() && matches!(kind, ValueKind::String | ValueKind::Seq | ValueKind::Bool)
}

/// `needle in haystack` as minijinja has it: a substring of text, an item of a
/// list, a key of a map.
fn contains(haystack: &Value, needle: &Value) -> Result<bool, Error> {
    if let Some(text) = haystack.as_str() {
        return Ok(needle.as_str().is_some_and(|n| text.contains(n)));
    }
    match haystack.try_iter() {
        Ok(mut items) => Ok(items.any(|item| item == *needle)),
        Err(_) => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot look for a value in {}", describe(haystack)),
        )),
    }
}

fn incomparable(left: &Value, op: Op, right: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "cannot compare {} with {} by {}: only numbers, and text that reads as a number, compare with numbers",
            describe(left),
            describe(right),
            op.text()
        ),
    )
}

/// A value for an error message: text quoted (and cut when long), others by kind.
fn describe(value: &Value) -> String {
    const LONGEST: usize = 40;
    match value.kind() {
        ValueKind::Undefined => "a missing value".to_owned(),
        ValueKind::None => "none".to_owned(),
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            match text.char_indices().nth(LONGEST) {
                Some((cut, _)) => format!("{:?}…", &text[..cut]),
                None => format!("{text:?}"),
            }
        }
        ValueKind::Number | ValueKind::Bool => value.to_string(),
        ValueKind::Seq | ValueKind::Iterable => "a list".to_owned(),
        ValueKind::Map => "a map".to_owned(),
        _ => format!("a value of kind {}", value.kind()),
    }
}

/// A number, exact for integers.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn cmp(self, other: Number) -> Ordering {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(&b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// The number `value` is or, for text, reads as.
fn number(value: &Value) -> Option<Number> {
    match value.kind() {
        ValueKind::Number => match i128::try_from(value.clone()) {
            Ok(i) => Some(Number::Int(i)),
            Err(_) => f64::try_from(value.clone())
                .ok()
                .filter(|f| !f.is_nan())
                .map(Number::Float),
        },
        ValueKind::String => read_number(value.as_str()?),
        _ => None,
    }
}

/// Text as a number: optional sign, digits with an optional fraction and
/// exponent, surrounding whitespace ignored (`18`, `-1.5`, `.5`, `1e3`).
/// `inf`, `nan`, `0x10`, `1,5` and the empty text are not numbers.
fn read_number(text: &str) -> Option<Number> {
    let text = text.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_formed = digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !well_formed {
        return None;
    }
    if let Ok(i) = text.parse::<i128>() {
        return Some(Number::Int(i));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Number::Float)
}

#[cfg(test)]
mod tests {
    use super::{read_number, Number};

    fn read(text: &str) -> Option<f64> {
        read_number(text).map(Number::as_f64)
    }

    #[test]
    fn text_that_reads_as_a_number() {
        assert_eq!(read("18"), Some(18.0));
        assert_eq!(read(" 18 "), Some(18.0));
        assert_eq!(read("-1.5"), Some(-1.5));
        assert_eq!(read("+7"), Some(7.0));
        assert_eq!(read(".5"), Some(0.5));
        assert_eq!(read("1e3"), Some(1000.0));
        assert_eq!(read("020"), Some(20.0));
        assert!(matches!(
            read_number("170141183460469231731687303715884105727"),
            Some(Number::Int(i128::MAX))
        ));
        for not in [
            "", " ", "inf", "-inf", "NaN", "nan", "0x10", "1,5", "1.2.3", "e5", "-", "1e", "12a",
            "1e999",
        ] {
            assert_eq!(read(not), None, "{not:?}");
        }
    }
}
