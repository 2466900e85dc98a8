//! The problem collector every part of the config check writes into.

use std::path::{Path, PathBuf};

use crate::support::diagnostic::{Diagnostic, display_path};
use crate::support::paths::normalize;

/// Collects the problems of one config file, each at its key, with the file's folder for
/// relative paths.
pub(super) struct Checker<'a> {
    file: &'a Path,
    base: PathBuf,
    pub(super) problems: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(file: &'a Path, base: PathBuf) -> Self {
        Checker {
            file,
            base,
            problems: Vec::new(),
        }
    }

    pub(super) fn err(
        &mut self,
        key: impl Into<String>,
        msg: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.problems
            .push(Diagnostic::at_key(self.file, key, msg).with_help(help));
    }

    pub(super) fn path(&self, p: &Path) -> PathBuf {
        normalize(&self.base.join(p))
    }

    /// An optional file that must exist when given.
    pub(super) fn existing_file(&mut self, key: &str, p: &Path) -> PathBuf {
        let abs = self.path(p);
        if !abs.is_file() {
            self.err(
                key,
                format!("the file {} does not exist", display_path(&abs)),
                "fix the path (relative paths are relative to the config file's folder)",
            );
        }
        abs
    }
}
