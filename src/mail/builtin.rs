//! The templates built into the binary: `config/templates/`, the same files
//! the package installs as examples under `/etc/liaison/templates/`.

use super::MailKind;

/// One built-in template file: kind, locale, file extension, text.
pub(super) struct BuiltIn {
    pub kind: MailKind,
    pub locale: &'static str,
    pub extension: &'static str,
    pub text: &'static str,
}

macro_rules! built_in {
    ($kind:expr, $dir:literal, $locale:literal, $ext:literal) => {
        BuiltIn {
            kind: $kind,
            locale: $locale,
            extension: $ext,
            text: include_str!(concat!(
                "../../config/templates/",
                $dir,
                "/",
                $locale,
                ".",
                $ext
            )),
        }
    };
}

macro_rules! locale {
    ($kind:expr, $dir:literal, $locale:literal) => {
        [
            built_in!($kind, $dir, $locale, "subject"),
            built_in!($kind, $dir, $locale, "txt"),
            built_in!($kind, $dir, $locale, "html"),
        ]
    };
}

/// Every built-in file.
pub(super) fn all() -> impl Iterator<Item = BuiltIn> {
    use MailKind::{RegistrationConfirmation as Rc, Welcome as W};
    [
        locale!(W, "welcome", "en"),
        locale!(W, "welcome", "cs"),
        locale!(Rc, "registration_confirmation", "en"),
        locale!(Rc, "registration_confirmation", "cs"),
    ]
    .into_iter()
    .flatten()
}
