//! The template set: built-in files overlaid by a folder's, compiled and
//! checked once, and the locale each user's mail is rendered in.
//!
//! Layout, in `config/templates/` and in a `mail.templates` folder alike:
//! `<kind>/<locale>.subject`, `<kind>/<locale>.txt`, `<kind>/<locale>.html`.
//! Anything else in the folder (a README, editor backups, other folders) is
//! not a template and is left alone. A folder's file replaces the built-in
//! file of the same name; a locale that is not built in needs all three.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use minijinja::Environment;

use super::error::{TemplateError, TemplateErrors};
use super::{builtin, render, MailKind};
use crate::config::Config;

/// The longest template file read, in bytes: far above any real mail (the
/// shipped ones are under 2 KiB), and within one render's fuel: a 64 KiB
/// file of 50-byte lines with one `{{ }}` each used 4,648 of the 5,000 units
/// (measured, `render.rs` tests).
const MAX_TEMPLATE_BYTES: u64 = 64 * 1024;

/// One of the three templates of a kind and locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// The `Subject` header: one line.
    Subject,
    /// The text/plain part: not escaped.
    Text,
    /// The text/html part: every value HTML-escaped.
    Html,
}

impl Part {
    /// The three, in file order.
    pub const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    /// The file extension: `subject`, `txt`, `html`.
    pub fn extension(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "txt",
            Part::Html => "html",
        }
    }

    fn from_extension(ext: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.extension() == ext)
    }
}

/// The compiled templates of every kind and locale, and the fallback locale.
#[derive(Debug)]
pub struct Templates {
    pub(super) env: Environment<'static>,
    /// The locales with all three parts, per kind (normalised: `pt-br`).
    locales: BTreeMap<MailKind, BTreeSet<String>>,
    /// What errors call each template: its file, or `built-in …`.
    pub(super) origins: HashMap<String, String>,
    default_locale: String,
}

/// One template's text and what errors call it.
struct Source {
    origin: String,
    text: String,
}

type Key = (MailKind, String, Part);

/// The name a template has in the environment: `welcome/en.txt`.
pub(super) fn name(kind: MailKind, locale: &str, part: Part) -> String {
    format!("{}/{locale}.{}", kind.as_str(), part.extension())
}

impl Templates {
    /// The built-in templates, overridden file by file from `folder`;
    /// `default_locale` is the first fallback of a locale without templates.
    /// Every problem of every file is reported.
    pub fn load(folder: Option<&Path>, default_locale: &str) -> Result<Self, TemplateErrors> {
        let mut errors = Vec::new();
        let mut sources = built_in_sources();
        if let Some(folder) = folder {
            read_folder(folder, &mut sources, &mut errors);
        }
        let locales = complete_locales(&sources, &mut errors);
        let mut env = render::environment();
        let mut origins = HashMap::new();
        for ((kind, locale, part), source) in sources {
            let name = name(kind, &locale, part);
            match render::compile(&mut env, kind, &name, &source.origin, source.text) {
                Ok(()) => {}
                Err(mut e) => errors.append(&mut e),
            }
            origins.insert(name, source.origin);
        }
        let templates = Templates {
            env,
            locales,
            origins,
            default_locale: normalise(default_locale),
        };
        if errors.is_empty() {
            errors = templates.trial_renders();
        }
        if errors.is_empty() {
            Ok(templates)
        } else {
            Err(TemplateErrors(errors))
        }
    }

    /// The templates `config` names (`mail.templates`, `default_locale`).
    pub fn for_config(config: &Config) -> Result<Self, TemplateErrors> {
        let folder = config.mail.as_ref().and_then(|m| m.templates.as_deref());
        Templates::load(folder, &config.default_locale)
    }

    /// The checks of [`Templates::load`] on `folder`, for the config loader.
    pub fn check_folder(folder: &Path) -> Result<(), TemplateErrors> {
        Templates::load(Some(folder), "en").map(|_| ())
    }

    /// The locales `kind` has templates for (normalised, e.g. `pt-br`).
    pub fn locales(&self, kind: MailKind) -> impl Iterator<Item = &str> {
        self.locales
            .get(&kind)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The locale a user of `wanted` gets `kind` in: `wanted` itself, its
    /// language (`cs` for `cs-CZ`), then the same for `default_locale`, then
    /// `en` (always built in). Case and `_`/`-` do not matter.
    pub fn locale_for(&self, kind: MailKind, wanted: &str) -> &str {
        let Some(set) = self.locales.get(&kind) else {
            return "en";
        };
        let wanted = normalise(wanted);
        let candidates = [
            Some(wanted.as_str()),
            language(&wanted),
            Some(self.default_locale.as_str()),
            language(&self.default_locale),
        ];
        let found = candidates.into_iter().flatten().find_map(|l| set.get(l));
        found.map_or("en", String::as_str)
    }

    /// Renders every complete (kind, locale) once with sample values, so a
    /// template that fails on every mail (an unknown filter, a subject of
    /// two lines, too much work) is refused now.
    fn trial_renders(&self) -> Vec<TemplateError> {
        let mut errors = Vec::new();
        for (kind, locales) in &self.locales {
            for locale in locales {
                let vars = super::preview::sample_vars(locale);
                if let Err(e) = self.render_in(*kind, locale, &vars) {
                    match e {
                        super::MailError::Template(t) => errors.push(t),
                        other => errors.push(TemplateError::file(
                            format!("{}/{locale}", kind.as_str()),
                            other.to_string(),
                        )),
                    }
                }
            }
        }
        errors
    }
}

/// `cs` of `cs-cz`; `None` when there is no region.
fn language(locale: &str) -> Option<&str> {
    locale.split_once('-').map(|(l, _)| l)
}

/// Lower case, `_` as `-`: `pt_BR` → `pt-br`.
fn normalise(locale: &str) -> String {
    locale.trim().to_ascii_lowercase().replace('_', "-")
}

/// Whether `stem` is a language tag: `en`, `cs`, `pt-BR`, `zh_Hant`.
fn is_locale(stem: &str) -> bool {
    crate::model::is_language_tag(stem)
}

fn built_in_sources() -> BTreeMap<Key, Source> {
    builtin::all()
        .filter_map(|b| {
            let part = Part::from_extension(b.extension)?;
            let key = (b.kind, b.locale.to_owned(), part);
            let origin = format!("built-in {}", name(b.kind, b.locale, part));
            let text = b.text.to_owned();
            Some((key, Source { origin, text }))
        })
        .collect()
}

/// Reads `<folder>/<kind>/<locale>.<part>` files over `sources`.
fn read_folder(
    folder: &Path,
    sources: &mut BTreeMap<Key, Source>,
    errors: &mut Vec<TemplateError>,
) {
    let shown = folder.display().to_string();
    match std::fs::metadata(folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return errors.push(TemplateError::file(shown, "not a folder")),
        Err(e) => return errors.push(TemplateError::file(shown, format!("cannot read: {e}"))),
    }
    for kind in MailKind::ALL {
        let dir = folder.join(kind.as_str());
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(TemplateError::file(
                    dir.display().to_string(),
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        let mut seen: HashMap<Key, String> = HashMap::new();
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for path in files {
            let Some((locale, part)) = template_file(&path) else {
                continue;
            };
            let origin = path.display().to_string();
            let key = (kind, locale, part);
            if let Some(first) = seen.get(&key) {
                let message =
                    format!("the same template as {first} (locale names ignore case and _/-)");
                errors.push(TemplateError::file(origin, message));
                continue;
            }
            match read_template(&path) {
                Ok(text) => {
                    seen.insert(key.clone(), origin.clone());
                    sources.insert(key, Source { origin, text });
                }
                Err(message) => errors.push(TemplateError::file(origin, message)),
            }
        }
    }
}

/// The locale (normalised) and part of a template file; `None` for anything
/// that is not one.
fn template_file(path: &Path) -> Option<(String, Part)> {
    if !path.is_file() {
        return None;
    }
    let file_name = path.file_name()?.to_str()?;
    let (stem, ext) = file_name.rsplit_once('.')?;
    let part = Part::from_extension(ext)?;
    is_locale(stem).then(|| (normalise(stem), part))
}

fn read_template(path: &Path) -> Result<String, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    if size > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "{size} bytes: mail templates may be at most {MAX_TEMPLATE_BYTES} bytes"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 (at byte {}); save it as UTF-8",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The (kind, locale) pairs that have all three parts; an error for each
/// part missing from a locale that has some.
fn complete_locales(
    sources: &BTreeMap<Key, Source>,
    errors: &mut Vec<TemplateError>,
) -> BTreeMap<MailKind, BTreeSet<String>> {
    let mut present: BTreeMap<(MailKind, &str), Vec<(Part, &str)>> = BTreeMap::new();
    for ((kind, locale, part), source) in sources {
        present
            .entry((*kind, locale.as_str()))
            .or_default()
            .push((*part, source.origin.as_str()));
    }
    let mut complete: BTreeMap<MailKind, BTreeSet<String>> = BTreeMap::new();
    for ((kind, locale), parts) in present {
        let missing: Vec<String> = Part::ALL
            .into_iter()
            .filter(|p| !parts.iter().any(|(have, _)| have == p))
            .map(|p| format!("{locale}.{}", p.extension()))
            .collect();
        if missing.is_empty() {
            complete.entry(kind).or_default().insert(locale.to_owned());
        } else {
            let (_, first) = parts[0];
            let message = format!(
                "locale {locale:?} of {kind} is not built in, so it needs all three templates; missing {}",
                missing.join(", ")
            );
            errors.push(TemplateError::file(first, message));
        }
    }
    complete
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn template_files_and_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "en.txt",
            "pt_BR.html",
            "README.md",
            "en.txt~",
            ".en.txt.swp",
            "x.subject",
            "en",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let found = |n: &str| template_file(&dir.path().join(n));
        assert_eq!(found("en.txt"), Some(("en".into(), Part::Text)));
        assert_eq!(found("pt_BR.html"), Some(("pt-br".into(), Part::Html)));
        for other in ["README.md", "en.txt~", ".en.txt.swp", "x.subject", "en"] {
            assert_eq!(found(other), None, "{other}");
        }
    }

    #[test]
    fn locale_falls_back_to_language_then_default_then_en() {
        let t = Templates::load(None, "cs").unwrap();
        assert_eq!(t.locale_for(MailKind::Welcome, "cs"), "cs");
        assert_eq!(t.locale_for(MailKind::Welcome, "CS_cz"), "cs");
        assert_eq!(t.locale_for(MailKind::Welcome, "de"), "cs");
        let t = Templates::load(None, "fr").unwrap();
        assert_eq!(t.locale_for(MailKind::Welcome, "de"), "en");
        assert_eq!(t.locale_for(MailKind::Welcome, "en-GB"), "en");
    }

    /// Loads the built-ins with `files` (path, text) in an override folder.
    fn with_overrides(files: &[(&str, &str)]) -> Result<Templates, TemplateErrors> {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Templates::load(Some(dir.path()), "en")
    }

    #[test]
    fn endless_work_and_deep_nesting_are_load_errors_not_hangs_or_crashes() {
        let endless = "{% for i in range(50000) %}{{ login }}{% endfor %}";
        let e = with_overrides(&[("welcome/en.txt", endless)]).unwrap_err();
        assert!(
            e.to_string().contains("used up its fuel of 5000 steps"),
            "{e}"
        );
        let deep = format!("{{{{ login{} }}}}", " | trim".repeat(5_000));
        let e = with_overrides(&[("welcome/en.html", &deep)]).unwrap_err();
        assert!(e.to_string().contains("en.html:1:"), "{e}");
        assert!(e.to_string().contains("nested more than 200 levels"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_utf8_or_too_large_is_refused() {
        let big = "x".repeat(64 * 1024 + 1);
        let e = with_overrides(&[("welcome/en.txt", &big)]).unwrap_err();
        assert!(e.to_string().contains("may be at most 65536 bytes"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("welcome")).unwrap();
        std::fs::write(dir.path().join("welcome/cs.txt"), b"Dobr\xfd den").unwrap();
        let e = Templates::load(Some(dir.path()), "en").unwrap_err();
        assert!(e.to_string().contains("not UTF-8 (at byte 4)"), "{e}");
    }

    #[test]
    fn templates_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Templates>();
    }

    #[test]
    fn built_ins_have_both_locales_for_every_kind() {
        let t = Templates::load(None, "en").unwrap();
        for kind in MailKind::ALL {
            assert_eq!(t.locales(kind).collect::<Vec<_>>(), ["cs", "en"]);
        }
    }
}
