//! What can go wrong: a template file that does not load ([`TemplateError`],
//! found when the config is loaded) and a message that cannot be made
//! ([`MailError`], for one mail).

use std::fmt;

/// A problem with one template file, where minijinja or our checks place it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The file (or `built-in welcome/en.txt`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl TemplateError {
    /// A problem with `file` as a whole.
    pub(crate) fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        TemplateError {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for TemplateError {
    /// `FILE:LINE:COLUMN: message`, leaving out what is not known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Every problem found while loading the templates, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateErrors(pub Vec<TemplateError>);

impl TemplateErrors {
    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, TemplateError> {
        self.0.iter()
    }
}

impl fmt::Display for TemplateErrors {
    /// One error per line, no trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TemplateErrors {}

/// Why one message could not be rendered or built.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A template failed while rendering (out of fuel, a value it cannot
    /// print, a subject that is not one line, …).
    #[error("{0}")]
    Template(TemplateError),
    /// A welcome needs the set-password link, which the caller did not give.
    #[error("a welcome mail needs its set-password link")]
    MissingLink,
    /// `mail.from` is not a mailbox lettre accepts.
    #[error("mail.from {from:?} is not a valid mailbox: {reason}")]
    From {
        /// The configured text.
        from: String,
        /// lettre's reason.
        reason: String,
    },
    /// The user's e-mail address is not one lettre accepts.
    #[error("the recipient address {address:?} is not valid: {reason}")]
    Recipient {
        /// The address.
        address: String,
        /// lettre's reason.
        reason: String,
    },
    /// The Message-ID is not `<left@right>` of printable ASCII.
    #[error("invalid Message-ID {0:?}: expected <unique@domain> of printable ASCII")]
    MessageId(String),
    /// lettre refused to build the message.
    #[error("the message could not be built: {0}")]
    Build(#[from] lettre::error::Error),
}
