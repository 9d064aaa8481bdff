//! The engine: minijinja with our settings and limits, compiling one
//! template file with its checks, and rendering a kind's three parts.
//!
//! Settings: `trim_blocks` and `lstrip_blocks` (a `{% if %}` on its own line
//! leaves no blank line in a text part); the single trailing newline of a
//! file is dropped (minijinja's default); undefined values are `SemiStrict`
//! (printing one is an error, `{% if x %}` is not); `.html` templates
//! auto-escape, the others do not. Limits are the `map:` templates' (decision
//! 0011, `mapping/limits.rs`): nesting checked when compiling, fuel per
//! render, recursion limit, values nested too deep refused when printed.

use std::collections::HashSet;

use minijinja::machinery::{tokenize, Token};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

use super::error::TemplateError;
use super::templates::{name, Part, Templates};
use super::vars::COMMON_VARIABLES;
use super::{MailError, MailKind, MailVars};
use crate::mapping::limits::{self, FUEL, RECURSION_LIMIT};
use crate::suggest::edit_distance;

/// The longest one rendered part may be, in bytes.
pub(crate) const MAX_RENDERED_BYTES: usize = 256 * 1024;

/// A kind's three parts, rendered for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The locale whose templates were used (after fallback).
    pub locale: String,
    /// The subject: one line, trimmed.
    pub subject: String,
    /// The text/plain body.
    pub text: String,
    /// The text/html body.
    pub html: String,
}

/// A minijinja environment with our settings and limits and no templates.
pub(super) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let mut syntax = SyntaxConfig::builder();
    syntax.trim_blocks(true).lstrip_blocks(true);
    // Building fails only for custom delimiters, which these are not.
    if let Ok(syntax) = syntax.build() {
        env.set_syntax(syntax);
    }
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_formatter(|out, state, value| {
        if limits::too_deep_to_print(value) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "a value nested more than {} levels deep cannot be printed",
                    limits::MAX_VALUE_DEPTH
                ),
            ));
        }
        match value.as_str() {
            Some(text) if *state.auto_escape() == AutoEscape::Html && !value.is_safe() => out
                .write_str(&escape_html(text))
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string())),
            _ => minijinja::escape_formatter(out, state, value),
        }
    });
    env
}

/// `text` safe in HTML text and in quoted attributes: `&`, `<`, `>`, `"` and
/// `'` escaped. (minijinja's own escaping also writes `/` as `&#x2f;`, which
/// makes every link in an `href` read `https:&#x2f;&#x2f;…` in the source.)
fn escape_html(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Compiles `text` as template `name` of `kind`: nesting within bounds, the
/// syntax, and only the kind's variables. `origin` names the file in errors.
pub(super) fn compile(
    env: &mut Environment<'static>,
    kind: MailKind,
    name: &str,
    origin: &str,
    text: String,
) -> Result<(), Vec<TemplateError>> {
    let at = |offset: usize, message: String| {
        let (line, column) = line_column(&text, offset);
        TemplateError {
            file: origin.to_owned(),
            line: Some(line),
            column: Some(column),
            message,
        }
    };
    if let Err(deep) = limits::check_nesting(&text, false) {
        let message = format!(
            "nested more than {} levels deep (brackets, filters and operators chained)",
            limits::MAX_NESTING
        );
        return Err(vec![at(deep.offset, message)]);
    }
    let syntax = env.syntax().clone();
    if let Err(e) = env.add_template_owned(name.to_owned(), text.clone()) {
        return Err(vec![located(&e, origin, &text)]);
    }
    let allowed = allowed_variables(env, kind);
    let template = env
        .get_template(name)
        .map_err(|e| vec![located(&e, origin, &text)])?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !allowed.contains(v.as_str()))
        .collect();
    unknown.sort();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut known: Vec<&str> = COMMON_VARIABLES.to_vec();
    known.extend(kind.own_variables());
    Err(unknown
        .iter()
        .map(|var| {
            let hint = known
                .iter()
                .filter(|k| edit_distance(var, k) <= 2)
                .min_by_key(|k| edit_distance(var, k))
                .map(|k| format!("did you mean {k:?}? "))
                .unwrap_or_default();
            let message = format!(
                "unknown variable {var:?}; {hint}{kind} templates have {}",
                known.join(", ")
            );
            match first_use(&text, var, &syntax) {
                Some(offset) => at(offset, message),
                None => TemplateError::file(origin, message),
            }
        })
        .collect())
}

/// The kind's variables, minijinja's global functions and `loop`.
fn allowed_variables(env: &Environment<'_>, kind: MailKind) -> HashSet<String> {
    COMMON_VARIABLES
        .iter()
        .chain(kind.own_variables())
        .map(|v| (*v).to_owned())
        .chain(env.globals().map(|(name, _)| name.to_owned()))
        .chain(["loop".to_owned()])
        .collect()
}

/// Byte offset of the first use of `var` as a name in `text`.
fn first_use(text: &str, var: &str, syntax: &SyntaxConfig) -> Option<usize> {
    tokenize(text, false, syntax.clone())
        .map_while(Result::ok)
        .find(|(token, _)| matches!(token, Token::Ident(name) if *name == var))
        .map(|(_, span)| span.start_offset as usize)
}

/// A minijinja error placed in `source`: line and column when it has a
/// range, else its line.
fn located(error: &Error, origin: &str, source: &str) -> TemplateError {
    let (line, column) = match (error.range(), error.line()) {
        (Some(range), _) if range.start <= source.len() => {
            let (line, column) = line_column(source, range.start);
            (Some(line), Some(column))
        }
        (_, line) => (line, None),
    };
    TemplateError {
        file: origin.to_owned(),
        line,
        column,
        message: describe(error),
    }
}

/// An error's kind and detail, without minijinja's debug dump; running out
/// of fuel says what it means.
fn describe(error: &Error) -> String {
    if error.kind() == ErrorKind::OutOfFuel {
        return format!(
            "too much work for one mail: the template used up its fuel of {FUEL} steps \
             (a loop that runs too long?)"
        );
    }
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl Templates {
    /// Renders `kind` for the user of `vars`, in the locale
    /// [`Templates::locale_for`] picks for `vars.locale`.
    pub fn render(&self, kind: MailKind, vars: &MailVars) -> Result<Rendered, MailError> {
        let locale = self.locale_for(kind, &vars.locale).to_owned();
        self.render_in(kind, &locale, vars)
    }

    /// Renders `kind` with the templates of `locale`, which must have them.
    pub(super) fn render_in(
        &self,
        kind: MailKind,
        locale: &str,
        vars: &MailVars,
    ) -> Result<Rendered, MailError> {
        if kind == MailKind::Welcome && vars.set_password_url.is_none() {
            return Err(MailError::MissingLink);
        }
        let ctx = vars.context(kind, locale);
        let subject = self.part(kind, locale, Part::Subject, &ctx)?;
        let subject = one_line(subject.trim()).map_err(|message| {
            MailError::Template(TemplateError::file(
                self.origin(kind, locale, Part::Subject),
                message,
            ))
        })?;
        Ok(Rendered {
            locale: locale.to_owned(),
            subject,
            text: self.part(kind, locale, Part::Text, &ctx)?,
            html: self.part(kind, locale, Part::Html, &ctx)?,
        })
    }

    fn part(
        &self,
        kind: MailKind,
        locale: &str,
        part: Part,
        ctx: &Value,
    ) -> Result<String, MailError> {
        let name = name(kind, locale, part);
        let origin = || self.origin(kind, locale, part);
        let fail = |e: &Error| {
            MailError::Template(TemplateError {
                file: origin(),
                line: e.line(),
                column: None,
                message: describe(e),
            })
        };
        let template = self.env.get_template(&name).map_err(|e| fail(&e))?;
        let text = template.render(ctx).map_err(|e| fail(&e))?;
        if text.len() > MAX_RENDERED_BYTES {
            return Err(MailError::Template(TemplateError::file(
                origin(),
                format!(
                    "the rendered text is {} bytes, more than the {MAX_RENDERED_BYTES} a part may hold",
                    text.len()
                ),
            )));
        }
        Ok(text)
    }

    fn origin(&self, kind: MailKind, locale: &str, part: Part) -> String {
        let name = name(kind, locale, part);
        self.origins.get(&name).cloned().unwrap_or(name)
    }
}

/// The subject as it is, or why it cannot be one: values cannot break lines
/// (they are cleaned), so a line break or control character here comes from
/// the template's own text.
fn one_line(subject: &str) -> Result<String, String> {
    if subject.is_empty() {
        return Err("the subject is empty".to_owned());
    }
    if subject.chars().any(char::is_control) {
        return Err(
            "the subject must be one line (it renders with a line break or control character)"
                .to_owned(),
        );
    }
    Ok(subject.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(title: &str) -> MailVars {
        MailVars {
            login: "eve".into(),
            title: title.into(),
            email: "eve@example.com".into(),
            locale: "en".into(),
            portal_url: Some("https://portal.example/login?a=1&b=2".into()),
            accounts: vec!["Smith & Sons <Ltd>".into()],
            set_password_url: Some("https://portal.example/password?token=abc".into()),
            expires: None,
        }
    }

    #[test]
    fn html_escapes_text_does_not_and_the_subject_stays_one_line() {
        let t = Templates::load(None, "en").unwrap();
        let r = t
            .render(MailKind::Welcome, &vars("Eve <b>\r\nBcc: x@evil.test"))
            .unwrap();
        assert!(
            r.html.contains("Eve &lt;b&gt; Bcc: x@evil.test"),
            "{}",
            r.html
        );
        assert!(r.html.contains("Smith &amp; Sons &lt;Ltd&gt;"));
        assert!(
            r.html
                .contains("<a href=\"https://portal.example/login?a=1&amp;b=2\">"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<b>"));
        assert!(
            r.text.contains("Hello Eve <b> Bcc: x@evil.test,"),
            "{}",
            r.text
        );
        assert!(r.text.contains("Company: Smith & Sons <Ltd>\n"));
        assert!(r.text.contains("https://portal.example/password?token=abc"));
        assert_eq!(r.subject, "Your portal account is ready: eve");
        assert!(!r.text.contains("\n\n\n"), "{}", r.text);
    }

    #[test]
    fn a_welcome_needs_its_link() {
        let t = Templates::load(None, "en").unwrap();
        let mut v = vars("Eve");
        v.set_password_url = None;
        assert!(matches!(
            t.render(MailKind::Welcome, &v),
            Err(MailError::MissingLink)
        ));
        assert!(t.render(MailKind::RegistrationConfirmation, &v).is_ok());
    }

    #[test]
    fn shipped_templates_use_a_small_part_of_the_fuel() {
        let t = Templates::load(None, "en").unwrap();
        let ctx = vars("Eve").context(MailKind::Welcome, "cs");
        let template = t.env.get_template("welcome/cs.html").unwrap();
        let captured = template.render_captured(ctx).unwrap();
        let (used, _) = captured.state().fuel_levels().unwrap();
        assert!(used < FUEL / 10, "used {used}");
        eprintln!("welcome/cs.html used {used} of {FUEL} fuel");
    }

    #[test]
    fn the_largest_template_file_renders_within_the_fuel() {
        let mut env = environment();
        let line = "<p>Static text of a long template, {{ login }}.</p>\n";
        let text = line.repeat(64 * 1024 / line.len());
        compile(&mut env, MailKind::Welcome, "welcome/en.html", "f", text).unwrap();
        let ctx = minijinja::context! { login => "eve" };
        let captured = env
            .get_template("welcome/en.html")
            .unwrap()
            .render_captured(ctx)
            .unwrap();
        let (used, _) = captured.state().fuel_levels().unwrap();
        eprintln!("a 64 KiB template used {used} of {FUEL} fuel");
        assert!(used < FUEL, "used {used}");
    }

    #[test]
    fn compile_errors_name_file_line_and_column() {
        let mut env = environment();
        let text = "Hello\n{{ title | }}\n".to_owned();
        let e = compile(
            &mut env,
            MailKind::Welcome,
            "welcome/en.txt",
            "t/welcome/en.txt",
            text,
        )
        .unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].to_string().starts_with("t/welcome/en.txt:2:"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn unknown_variables_are_refused_with_a_hint() {
        let mut env = environment();
        let text = "Hi {{ titel }}\n{{ set_password_url }}".to_owned();
        let e = compile(
            &mut env,
            MailKind::RegistrationConfirmation,
            "registration_confirmation/en.txt",
            "f.txt",
            text,
        )
        .unwrap_err();
        let all: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert!(
            all[0].starts_with("f.txt:2:4: unknown variable \"set_password_url\""),
            "{all:?}"
        );
        assert!(
            all[1].starts_with("f.txt:1:7: unknown variable \"titel\"; did you mean \"title\"?"),
            "{all:?}"
        );
    }

    #[test]
    fn html_escaping_covers_text_and_quoted_attributes() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
        assert_eq!(escape_html("https://x/y?z"), "https://x/y?z");
        // `| safe` is the template author's choice, and `| e` escapes once.
        let mut env = environment();
        let text = "{{ title | safe }} {{ title | e }} {{ accounts }}".to_owned();
        compile(&mut env, MailKind::Welcome, "welcome/en.html", "f", text).unwrap();
        let ctx = minijinja::context! { title => "<b>", accounts => vec!["<i>"] };
        let html = env
            .get_template("welcome/en.html")
            .unwrap()
            .render(ctx)
            .unwrap();
        assert_eq!(html, "<b> &lt;b&gt; [&#x27;&lt;i&gt;&#x27;]");
    }

    #[test]
    fn a_two_line_subject_is_refused() {
        assert!(one_line("a\nb").is_err());
        assert!(one_line("").is_err());
        assert_eq!(one_line("Hello").unwrap(), "Hello");
    }
}
