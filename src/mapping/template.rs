//! `map:` templates: one minijinja template per key, compiled once, rendered
//! against the record (see `context.rs`). What templates can use is documented
//! for users in the module docs of `mapping` (mod.rs).

use std::borrow::Cow;
use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, Error, ErrorKind, Expression, UndefinedBehavior, Value};

use super::draft::Draft;
use super::fields::{valid_keys, Field, Target};
use super::limits::{self, FUEL, MAX_RENDERED_BYTES, MAX_VALUE_DEPTH, RECURSION_LIMIT};
use super::{compare, context, filters, prepare, MapError, Mapped};

/// A minijinja environment with our settings, filters and limits and no
/// templates.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Missing attributes render empty, and so do lookups on them.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Each render (and each `when:`) may do this much work and no more.
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_formatter(|out, state, value| {
        if limits::too_deep_to_print(value) {
            return Err(too_deep_value());
        }
        minijinja::escape_formatter(out, state, value)
    });
    filters::register(&mut env);
    compare::register(&mut env);
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
    /// `keyed`: the records carry keys, which are their contact ids.
    pub(crate) fn compile(spec: &[(String, String)], keyed: bool) -> Result<Self, Vec<MapError>> {
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
            if keyed && target == Target::Field(Field::ContactId) {
                errors.push(MapError::new(
                    key,
                    "this source gives each record a key, which is its contact id: \
                     remove contact_id from map",
                ));
                continue;
            }
            if fields.iter().any(|f| f.key == *key) {
                errors.push(MapError::new(key, "given more than once"));
                continue;
            }
            let text = match prepare::template(key, source) {
                Ok(text) => text.into_owned(),
                Err(problems) => {
                    errors.extend(problems.into_iter().map(|p| MapError::new(key, p)));
                    continue;
                }
            };
            if let Err(e) = env.add_template_owned(key.clone(), text) {
                errors.push(MapError::new(key, describe(&e, source, 0)));
                continue;
            }
            let expression = match (&target, sole_expression(source)) {
                // The list fields take every value of a list: evaluated as an
                // expression, not printed (a list prints as its first value).
                (Target::Field(Field::Grants | Field::AccountDomains), Some(inner)) => {
                    prepare::expression(source, inner)
                        .ok()
                        .and_then(|text| shared().compile_expression_owned(text.into_owned()).ok())
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
            if keyed && field == Field::ContactId {
                continue;
            }
            if !fields.iter().any(|f| f.target == Target::Field(field))
                && !errors.iter().any(|e| e.key == field.name())
            {
                let message = if keyed {
                    "missing: a map must give name and email"
                } else {
                    "missing: a map must give contact_id, name and email"
                };
                errors.push(MapError::new(field.name(), message));
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
        if let Some(key) = record.key() {
            draft.set_field(Field::ContactId, Cow::Borrowed(key));
        }
        let mut problems = Vec::new();
        for field in &self.fields {
            if let Some(expression) = &field.expression {
                match expression.eval(ctx.clone()).map_err(|e| describe_run(&e)) {
                    Ok(value) => match set_value(&mut draft, &field.target, value) {
                        Ok(()) => {}
                        Err(message) => problems.push(format!("{}: {message}", field.key)),
                    },
                    Err(message) => problems.push(format!("{}: {message}", field.key)),
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

    /// Renders only the contact id (a keyed record's is its key, see
    /// [`crate::mapping::Mapping::contact_id_of`]).
    pub(crate) fn contact_id(&self, record: &liaison_plugin_api::Record) -> Option<String> {
        let text = self
            .render(Field::ContactId.name(), &context::of(record))
            .ok()?;
        let id = text.trim();
        (!id.is_empty()).then(|| id.to_owned())
    }

    /// Renders template `key`; text longer than [`MAX_RENDERED_BYTES`] is an error.
    fn render(&self, key: &str, ctx: &Value) -> Result<String, String> {
        let template = self.env.get_template(key).map_err(|e| describe_short(&e))?;
        let text = template.render(ctx).map_err(|e| describe_run(&e))?;
        within_limit(text.len())?;
        Ok(text)
    }
}

/// Puts an expression's value: a list (not a string) item by item, anything
/// else as its text. More than [`MAX_RENDERED_BYTES`] in all is an error.
fn set_value(draft: &mut Draft<'_>, target: &Target, value: Value) -> Result<(), String> {
    if value.is_undefined() || value.is_none() {
        return Ok(());
    }
    if limits::too_deep_to_print(&value) {
        return Err(describe_short(&too_deep_value()));
    }
    if value.as_str().is_none() {
        if let Ok(items) = value.try_iter() {
            let items: Vec<String> = items.map(|item| item.to_string()).collect();
            within_limit(items.iter().map(String::len).sum())?;
            match target {
                Target::Field(Field::AccountDomains) => {
                    draft.set(target, Cow::Owned(items.join("|")));
                }
                _ => draft.add_grants(items),
            }
            return Ok(());
        }
    }
    let text = value.to_string();
    within_limit(text.len())?;
    draft.set(target, Cow::Owned(text));
    Ok(())
}

/// An error when `len` bytes are more than one field may hold.
fn within_limit(len: usize) -> Result<(), String> {
    if len > MAX_RENDERED_BYTES {
        return Err(format!(
            "the rendered text is {len} bytes, more than the {MAX_RENDERED_BYTES} a field may hold"
        ));
    }
    Ok(())
}

fn too_deep_value() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("a value nested more than {MAX_VALUE_DEPTH} levels deep cannot be printed"),
    )
}

/// A render or evaluation error for a row error: running out of fuel says
/// what it means.
pub(crate) fn describe_run(error: &Error) -> String {
    if error.kind() == ErrorKind::OutOfFuel {
        return format!(
            "too much work for one record: the template used up its fuel of {FUEL} steps \
             (a loop that runs too long, or a value that keeps growing?)"
        );
    }
    describe_short(error)
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
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset;
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
