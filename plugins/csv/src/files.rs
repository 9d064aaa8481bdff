//! Which files a source's `path` names: the file itself, or every file its glob
//! matches, in sorted order.

use std::path::{Path, PathBuf};

use liaison_plugin_api::SourceError;

/// The files to read for `path`, in the order to read them.
///
/// A path that exists, or that holds no glob metacharacter, is taken literally
/// (a missing file then fails when it is opened, naming the path). Otherwise it is
/// a glob: directories are left out, and a glob that matches no file is
/// [`SourceError::NotFound`].
pub(crate) fn resolve(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    if path.exists() || !has_glob_chars(path) {
        return Ok(vec![path.to_path_buf()]);
    }
    let pattern = path.to_str().ok_or_else(|| {
        SourceError::Invalid(format!(
            "{}: glob pattern is not valid UTF-8",
            path.display()
        ))
    })?;
    let entries = glob::glob(pattern)
        .map_err(|e| SourceError::Invalid(format!("{pattern}: invalid glob pattern: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let found = entry.map_err(|e| SourceError::Io {
            what: e.path().display().to_string(),
            source: e.into(),
        })?;
        if found.is_file() {
            files.push(found);
        }
    }
    if files.is_empty() {
        return Err(SourceError::NotFound(format!("no file matches {pattern}")));
    }
    files.sort();
    Ok(files)
}

fn has_glob_chars(path: &Path) -> bool {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'['))
}
