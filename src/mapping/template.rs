//! `map:` templates: one minijinja template per key, compiled once, rendered
//! against the record (see `context.rs`). What templates can use is documented
//! for users in the module docs of `mapping` (mod.rs).

use std::borrow::Cow;
use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, Error, Expression, UndefinedBehavior, Value};

use super::draft::Draft;
use super::fields::{valid_keys, Field, Target};
use super::{context, filters, MapError, Mapped};

/// A minijinja environment with our settings and filters and no templates.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Missing attributes render empty, and so do lookups on them.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    filters::register(&mut env);
    env
}

/// The environment expressions (`when:`, list-valued `grants`) are compiled in.
/// It holds no templates, so one instance serves every mapping, and expressions
/// compiled in it can live as long as their mapping.
pub(crate) fn shared() -> &'static Environment<'static> {
    static SHARED: OnceLock<Environment<'static>> = OnceLock::new();
    SHARED.get_or_init(environment)
}

/// The compiled `map:` of one source.
#[derive(Debug)]
pub(crate) struct Templates {
    /// Holds one template per key, named by the key.
    env: Environment<'static>,
    fields: Vec<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    key: String,
    target: Target,
    /// For `grants` written as one expression: evaluated to a value, so a list
    /// result gives one grant per item.
    expression: Option<Expression<'static, 'static>>,
}

impl Templates {
    /// Compiles every entry, collecting every error.
    pub(crate) fn compile(spec: &[(String, String)]) -> Result<Self, Vec<MapError>> {
        let mut env = environment();
        let mut fields: Vec<Compiled> = Vec::with_capacity(spec.len());
        let mut errors = Vec::new();
        for (key, source) in spec {
            let Some(target) = Target::parse(key) else {
                errors.push(MapError::new(
                    key,
                    format!("unknown key {key:?}; valid keys are {}", valid_keys()),
                ));
                continue;
            };
            if fields.iter().any(|f| f.key == *key) {
                errors.push(MapError::new(key, "given more than once"));
                continue;
            }
            if let Err(e) = env.add_template_owned(key.clone(), source.clone()) {
                errors.push(MapError::new(key, describe(&e, source, 0)));
                continue;
            }
            let expression = match (&target, sole_expression(source)) {
                (Target::Field(Field::Grants), Some(inner)) => {
                    shared().compile_expression_owned(inner.to_owned()).ok()
                }
                _ => None,
            };
            fields.push(Compiled {
                key: key.clone(),
                target,
                expression,
            });
        }
        for field in Field::REQUIRED {
            if !fields.iter().any(|f| f.target == Target::Field(field))
                && !errors.iter().any(|e| e.key == field.name())
            {
                errors.push(MapError::new(
                    field.name(),
                    "missing: a map must give contact_id, name and email",
                ));
            }
        }
        if errors.is_empty() {
            Ok(Templates { env, fields })
        } else {
            Err(errors)
        }
    }

    /// Renders every field and checks the result.
    pub(crate) fn apply(&self, record: &liaison_plugin_api::Record) -> Mapped {
        let ctx = context::of(record);
        let mut draft = Draft::default();
        let mut problems = Vec::new();
        for field in &self.fields {
            if let Some(expression) = &field.expression {
                match expression.eval(ctx.clone()) {
                    Ok(value) => set_value(&mut draft, &field.target, value),
                    Err(e) => problems.push(format!("{}: {}", field.key, describe_short(&e))),
                }
                continue;
            }
            match self.render(&field.key, &ctx) {
                Ok(text) => draft.set(&field.target, Cow::Owned(text)),
                Err(message) => problems.push(format!("{}: {message}", field.key)),
            }
        }
        if problems.is_empty() {
            draft.finish()
        } else {
            Mapped::Invalid {
                contact_id: draft.contact_id(),
                message: problems.join("; "),
            }
        }
    }

    /// Renders only the contact id.
    pub(crate) fn contact_id(&self, record: &liaison_plugin_api::Record) -> Option<String> {
        let text = self
            .render(Field::ContactId.name(), &context::of(record))
            .ok()?;
        let id = text.trim();
        (!id.is_empty()).then(|| id.to_owned())
    }

    fn render(&self, key: &str, ctx: &Value) -> Result<String, String> {
        let template = self.env.get_template(key).map_err(|e| describe_short(&e))?;
        template.render(ctx).map_err(|e| describe_short(&e))
    }
}

/// Puts an expression's value: a list (not a string) item by item, anything
/// else as its text.
fn set_value(draft: &mut Draft<'_>, target: &Target, value: Value) {
    if value.is_undefined() || value.is_none() {
        return;
    }
    if value.as_str().is_none() {
        if let Ok(items) = value.try_iter() {
            draft.add_grants(items.map(|item| item.to_string()));
            return;
        }
    }
    draft.set(target, Cow::Owned(value.to_string()));
}

/// The expression inside one surrounding `{{ … }}` pair (with or without `-`
/// whitespace control), or the whole text when there is none.
pub(crate) fn strip_braces(source: &str) -> &str {
    sole_expression(source).unwrap_or_else(|| source.trim())
}

/// The expression inside one surrounding `{{ … }}` pair, if the text is wrapped
/// in one. (Whether it is a *single* expression is for the compiler to say:
/// `{{ a }} {{ b }}` gives `a }} {{ b`, which does not compile.)
fn sole_expression(source: &str) -> Option<&str> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    Some(inner.strip_suffix('-').unwrap_or(inner))
}

/// A compile error for people: what is wrong and where in `source`, as
/// `syntax error: unexpected end of input (line 1, column 9)`. `offset` is where
/// the compiled text starts within `source` (non-zero when `{{ }}` were stripped).
pub(crate) fn describe(error: &Error, source: &str, offset: usize) -> String {
    let mut message = describe_short(error);
    match (error.line(), error.range()) {
        (_, Some(range)) if offset + range.start <= source.len() => {
            let (line, column) = line_column(source, offset + range.start);
            message.push_str(&format!(" (line {line}, column {column})"));
        }
        (Some(line), _) => message.push_str(&format!(" (line {line})")),
        _ => {}
    }
    message
}

/// An error's kind and detail, without minijinja's debug dump.
pub(crate) fn describe_short(error: &Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset;
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
