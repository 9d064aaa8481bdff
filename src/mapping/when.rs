//! `when:`: a boolean expression deciding which records are mapped.
//!
//! It is compiled as a minijinja *expression* (`employeeType == 'partner'`),
//! written with or without one surrounding `{{ }}`, and its value's truth decides
//! (Jinja truthiness: `false`, `none`, undefined, `0`, empty text and empty lists
//! are false). Nothing is rendered to text and compared with `"true"`, so
//! `when: "{{ portal }}"` keeps a row whose `portal` is `no`: the text `no` is
//! true. Compare explicitly (`portal == 'yes'`, `portal | lower in ['yes',
//! 'true', '1']`). A missing attribute is undefined, hence false.
//!
//! Comparisons follow the rule of `compare.rs` (`age > 18` compares numbers;
//! `"unknown" > 18` is a row error), and an evaluation error is the record's
//! row error quoting the expression: `when: age > 18: cannot compare …`.

use liaison_plugin_api::Record;
use minijinja::Expression;

use super::template::{describe, describe_run, shared, strip_braces};
use super::{context, prepare, MapError};

/// How much of the expression a row error quotes.
const QUOTED_CHARS: usize = 80;

/// A compiled `when:`.
#[derive(Debug)]
pub(crate) struct When {
    expression: Expression<'static, 'static>,
    /// The expression as written (without `{{ }}`), for row errors.
    text: String,
}

impl When {
    /// Compiles the expression; every error has key `when`.
    pub(crate) fn compile(source: &str) -> Result<Self, Vec<MapError>> {
        let inner = strip_braces(source);
        if inner.trim().is_empty() {
            return Err(vec![MapError::new("when", "the expression is empty")]);
        }
        let errors = |messages: Vec<String>| {
            messages
                .into_iter()
                .map(|m| MapError::new("when", m))
                .collect::<Vec<_>>()
        };
        let text = prepare::expression(source, inner).map_err(errors)?;
        let expression = shared()
            .compile_expression_owned(text.into_owned())
            .map_err(|e| {
                // `inner` is a slice of `source`: report positions in what was written.
                let offset = inner.as_ptr() as usize - source.as_ptr() as usize;
                vec![MapError::new("when", describe(&e, source, offset))]
            })?;
        Ok(When {
            expression,
            text: quoted(inner.trim()),
        })
    }

    /// Whether `record` is kept; `Err` with a message naming the expression
    /// when evaluation fails.
    pub(crate) fn eval(&self, record: &Record) -> Result<bool, String> {
        self.expression
            .eval(context::of(record))
            .map(|value| value.is_true())
            .map_err(|e| format!("when: {}: {}", self.text, describe_run(&e)))
    }
}

/// `text`, cut to [`QUOTED_CHARS`] characters.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
