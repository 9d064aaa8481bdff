//! A template or expression made ready for minijinja, in three steps: its
//! nesting is bounded before it is parsed (`limits.rs`: a deep chain would
//! overflow the stack), its tree is checked for what can be known without data
//! (`check.rs`), and comparisons that need our rule are rewritten
//! (`compare.rs`, `unparse.rs`). Each problem comes back as a message ending
//! with its position in what was written: `(line L, column C)`.

use std::borrow::Cow;

use minijinja::machinery::{parse, parse_expr};
use minijinja::syntax::SyntaxConfig;

use super::check::{self, Problem};
use super::limits::{self, MAX_NESTING};
use super::template::{describe, line_column};
use super::unparse;

/// The text to compile for template `source` (named `name` in minijinja's
/// messages), or every problem found.
pub(crate) fn template<'s>(name: &str, source: &'s str) -> Result<Cow<'s, str>, Vec<String>> {
    if let Err(deep) = limits::check_nesting(source, false) {
        return Err(vec![too_deep(source, deep.offset)]);
    }
    let tree =
        parse(source, name, SyntaxConfig::default()).map_err(|e| vec![describe(&e, source, 0)])?;
    let problems = check::template(&tree);
    if !problems.is_empty() {
        return Err(located(source, 0, problems));
    }
    Ok(match unparse::template_needs_rule(&tree) {
        true => Cow::Owned(unparse::template(&tree)),
        false => Cow::Borrowed(source),
    })
}

/// The text to compile for the expression `inner`, a part of `source` (what
/// was written, perhaps with `{{ }}` around it), or every problem found.
pub(crate) fn expression<'s>(source: &str, inner: &'s str) -> Result<Cow<'s, str>, Vec<String>> {
    let offset = (inner.as_ptr() as usize).saturating_sub(source.as_ptr() as usize);
    if let Err(deep) = limits::check_nesting(inner, true) {
        return Err(vec![too_deep(source, offset + deep.offset)]);
    }
    let tree = parse_expr(inner).map_err(|e| vec![describe(&e, source, offset)])?;
    let problems = check::expression(&tree);
    if !problems.is_empty() {
        return Err(located(source, offset, problems));
    }
    Ok(match unparse::expression_needs_rule(&tree) {
        true => Cow::Owned(unparse::expression(&tree)),
        false => Cow::Borrowed(inner),
    })
}

fn too_deep(source: &str, offset: usize) -> String {
    format!(
        "nests too deeply: more than {MAX_NESTING} levels of brackets, operators, filters and lookups{}",
        position(source, offset)
    )
}

fn located(source: &str, offset: usize, problems: Vec<Problem>) -> Vec<String> {
    problems
        .into_iter()
        .map(|p| format!("{}{}", p.message, position(source, offset + p.offset)))
        .collect()
}

/// ` (line L, column C)` of byte `offset` in `source`.
fn position(source: &str, offset: usize) -> String {
    let (line, column) = line_column(source, offset.min(source.len()));
    format!(" (line {line}, column {column})")
}
