//! `when:`: a boolean expression deciding which records are mapped.
//!
//! It is compiled as a minijinja *expression* (`employeeType == 'partner'`),
//! written with or without one surrounding `{{ }}`, and its value's truth decides
//! (Jinja truthiness: `false`, `none`, undefined, `0`, empty text and empty lists
//! are false). Nothing is rendered to text and compared with `"true"`, so
//! `when: "{{ portal }}"` keeps a row whose `portal` is `no`: the text `no` is
//! true. Compare explicitly (`portal == 'yes'`, `portal | lower in ['yes',
//! 'true', '1']`). A missing attribute is undefined, hence false.

use liaison_plugin_api::Record;
use minijinja::Expression;

use super::template::{describe, describe_short, shared, strip_braces};
use super::{context, MapError};

/// A compiled `when:`.
#[derive(Debug)]
pub(crate) struct When {
    expression: Expression<'static, 'static>,
}

impl When {
    /// Compiles the expression; an error has key `when`.
    pub(crate) fn compile(source: &str) -> Result<Self, MapError> {
        let inner = strip_braces(source);
        if inner.trim().is_empty() {
            return Err(MapError::new("when", "the expression is empty"));
        }
        shared()
            .compile_expression_owned(inner.to_owned())
            .map(|expression| When { expression })
            .map_err(|e| {
                // `inner` is a slice of `source`: report positions in what was written.
                let offset = inner.as_ptr() as usize - source.as_ptr() as usize;
                MapError::new("when", describe(&e, source, offset))
            })
    }

    /// Whether `record` is kept; `Err` with a message when evaluation fails.
    pub(crate) fn eval(&self, record: &Record) -> Result<bool, String> {
        self.expression
            .eval(context::of(record))
            .map(|value| value.is_true())
            .map_err(|e| format!("when: {}", describe_short(&e)))
    }
}
