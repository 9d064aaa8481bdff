//! Located configuration errors: `FILE:LINE:COLUMN: message`.

use std::fmt;
use std::path::PathBuf;

/// A position in the config file (1-based line and column, counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Span {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Span {
    /// The first character of the file.
    pub const START: Span = Span { line: 1, column: 1 };

    /// A span at `line`:`column`.
    pub const fn new(line: u32, column: u32) -> Self {
        Span { line, column }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem in the config file, at a position.
///
/// The message names the key path and the offending value (never a secret), e.g.
/// `safety.max_deprovision: expected a non-negative integer, found "fifty"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file, as given to the loader.
    pub file: PathBuf,
    /// Where in the file.
    pub span: Span,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.span.line,
            self.span.column,
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one config file, sorted by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Sorts by position, keeping the discovery order of errors at the same spot.
    pub(super) fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| e.span);
        ConfigErrors(errors)
    }

    /// The errors, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never the case for a value returned by the loader).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line, no trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: u32, column: u32, message: &str) -> ConfigError {
        ConfigError {
            file: PathBuf::from("partners.yaml"),
            span: Span::new(line, column),
            message: message.to_owned(),
        }
    }

    #[test]
    fn displays_file_line_column_message() {
        let e = error(
            10,
            20,
            "safety.max_deprovision: expected a non-negative integer",
        );
        assert_eq!(
            e.to_string(),
            "partners.yaml:10:20: safety.max_deprovision: expected a non-negative integer"
        );
    }

    #[test]
    fn collection_is_sorted_by_position_and_printed_one_per_line() {
        let all = ConfigErrors::sorted(vec![error(3, 1, "c"), error(1, 5, "a"), error(1, 9, "b")]);
        assert_eq!(
            all.to_string(),
            "partners.yaml:1:5: a\npartners.yaml:1:9: b\npartners.yaml:3:1: c"
        );
        assert_eq!(all.len(), 3);
    }
}
