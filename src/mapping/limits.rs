//! What one template or `when:` may cost, so that no config and no record can
//! take the process down: nesting is checked when a template is compiled (a
//! `validate` error), work and output size when it is rendered (a row error).
//!
//! minijinja's parser guards brackets and statements (150 levels), but not
//! chains: `a | f | f …`, `a ~ a ~ …`, `not not …`, `a.b.c…` build a tree as
//! deep as the chain is long, which its code generator then walks recursively.
//! In a debug build on a 2 MiB stack (a spawned thread's default), 1,000 links
//! passed and 2,000 overflowed the stack (measured with the real binary under
//! `ulimit -s 2048`); [`MAX_NESTING`] stays well below that.

use minijinja::machinery::{tokenize, Token};
use minijinja::syntax::SyntaxConfig;

/// The deepest a template may nest: brackets plus the operators, filters,
/// tests and lookups chained inside each (an upper bound of the depth of the
/// tree minijinja builds for it).
pub(crate) const MAX_NESTING: usize = 200;

/// The work one render (or one `when:`) may do, in minijinja fuel: about one
/// unit per instruction executed and per 64 bytes of data created or worked
/// on, so it also bounds the memory a render allocates (about 320 KiB). Real
/// templates use tens; a 60 KB field passes through two text filters, not
/// three (measured).
///
/// It also bounds how deeply a render can nest values: `{% set x = [[…x…]] %}`
/// repeated nests about one level per unit. minijinja drops and prints nested
/// values recursively, and the budget is what keeps that within the stack. In
/// a release build on a 2 MiB thread, 5,600 levels passed and 6,300 overflowed;
/// in a debug build on the 8 MiB main thread, 4,800 passed and 6,300
/// overflowed (printing with `~`); 5,000 units reach about 4,600 levels.
/// (Printing with `{{ }}` is refused past [`MAX_VALUE_DEPTH`] anyway.)
pub(crate) const FUEL: u64 = 5_000;

/// The deepest value a template may print (lists in lists …).
pub(crate) const MAX_VALUE_DEPTH: usize = 100;

/// The longest text one rendered field may be, in bytes.
pub(crate) const MAX_RENDERED_BYTES: usize = 64 * 1024;

/// How deep minijinja may recurse at render time; its default is 500.
/// (Recursive loops, the one template construct that recurses, are refused
/// when compiling: see `check.rs`.)
pub(crate) const RECURSION_LIMIT: usize = 100;

/// Whether `value` nests lists or maps more than [`MAX_VALUE_DEPTH`] deep.
/// Walks with its own stack, so it cannot overflow the thread's.
pub(crate) fn too_deep_to_print(value: &minijinja::Value) -> bool {
    // Text, the usual value, is checked without allocating.
    if value.as_object().is_none() {
        return false;
    }
    let mut pending = vec![(value.clone(), 0usize)];
    while let Some((value, depth)) = pending.pop() {
        let Some(object) = value.as_object() else {
            continue;
        };
        if depth >= MAX_VALUE_DEPTH {
            return true;
        }
        if let Some(items) = object.try_iter() {
            pending.extend(items.map(|item| (item, depth + 1)));
        }
        if let Some(pairs) = object.try_iter_pairs() {
            pending.extend(pairs.map(|(_, item)| (item, depth + 1)));
        }
    }
    false
}

/// Where a template first nests deeper than [`MAX_NESTING`]: a byte offset
/// into the text checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep {
    /// Byte offset of the token that went past the limit.
    pub(crate) offset: usize,
}

/// Checks that `source` (a template, or an expression when `in_expr`) nests at
/// most [`MAX_NESTING`] levels, before it is handed to minijinja's parser.
///
/// Works on minijinja's own tokens, without building a tree: each open
/// bracket starts a level, and every operator, filter, test, lookup or call
/// chained at a level since its last `,` or `:` adds one. Text that does not
/// tokenize passes: the parser reports it.
pub(crate) fn check_nesting(source: &str, in_expr: bool) -> Result<(), TooDeep> {
    let mut levels: Vec<usize> = vec![0];
    let mut depth = 1;
    for token in tokenize(source, in_expr, SyntaxConfig::default()) {
        let Ok((token, span)) = token else {
            return Ok(());
        };
        match step(&token) {
            Step::Reset => {
                levels.clear();
                levels.push(0);
                depth = 1;
            }
            Step::Chain => {
                if let Some(top) = levels.last_mut() {
                    *top += 1;
                    depth += 1;
                }
            }
            Step::Open => {
                if let Some(top) = levels.last_mut() {
                    *top += 1;
                }
                levels.push(0);
                depth += 2;
            }
            Step::Close => {
                if levels.len() > 1 {
                    let ops = levels.pop().unwrap_or_default();
                    depth -= ops + 1;
                }
            }
            Step::Separate => {
                if let Some(top) = levels.last_mut() {
                    depth -= *top;
                    *top = 0;
                }
            }
            Step::Leaf => {}
        }
        if depth > MAX_NESTING {
            return Err(TooDeep {
                offset: span.start_offset as usize,
            });
        }
    }
    Ok(())
}

/// What a token does to the nesting count.
enum Step {
    /// A block starts or ends: counting starts afresh.
    Reset,
    /// An operator, filter, test or lookup: one more link at this level.
    Chain,
    /// An open bracket: a link at this level and a new level.
    Open,
    /// A close bracket: back to the enclosing level.
    Close,
    /// `,` or `:`: the next item is a sibling, not nested in the last.
    Separate,
    /// A name or a literal.
    Leaf,
}

fn step(token: &Token<'_>) -> Step {
    match token {
        Token::VariableStart | Token::VariableEnd | Token::BlockStart | Token::BlockEnd => {
            Step::Reset
        }
        Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => Step::Open,
        Token::ParenClose | Token::BracketClose | Token::BraceClose => Step::Close,
        Token::Comma | Token::Colon => Step::Separate,
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::FloorDiv
        | Token::Pow
        | Token::Mod
        | Token::Dot
        | Token::Tilde
        | Token::Assign
        | Token::Pipe
        | Token::Eq
        | Token::Ne
        | Token::Gt
        | Token::Gte
        | Token::Lt
        | Token::Lte => Step::Chain,
        Token::Ident("and" | "or" | "not" | "is" | "in" | "if" | "else") => Step::Chain,
        Token::TemplateData(_)
        | Token::Ident(_)
        | Token::Str(_)
        | Token::String(_)
        | Token::Int(_)
        | Token::Int128(_)
        | Token::Float(_) => Step::Leaf,
    }
}
