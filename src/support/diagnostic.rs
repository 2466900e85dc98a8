//! One user-facing problem in a file the user wrote (config or sidecar): where it is, which key,
//! what is wrong and what to do. Config and sidecar errors are lists of these; `tokdrop check`
//! and the result files print them. Rendering lives here so every command says it the same way.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A problem found in a YAML file, or about a file as a whole (then `line` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file the problem is in, as the user named it (not canonicalised).
    pub file: PathBuf,
    /// 1-based line and column of the offending key or value, when known.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Key path inside the document (`watch[0].settle`); empty for the whole file.
    pub key: String,
    /// What is wrong, in plain words.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem with the file as a whole (cannot read it, too large, …).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: String::new(),
            message: message.into(),
            help: None,
        }
    }

    /// A problem at a key path; the position is filled in later by a [`crate::support::yaml::Locator`].
    pub fn at_key(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            ..Self::file(file, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_position(mut self, line: u64, column: u64) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// `file:line:column` (or just `file`), the prefix editors and terminals can jump to.
    pub fn location(&self) -> String {
        let file = display_path(&self.file);
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
            (Some(l), None) => format!("{file}:{l}"),
            _ => file,
        }
    }
}

/// A path as a user wants to read it: relative to the current directory when it is below it.
/// `text` safe to print on one line of a terminal, a log or a comment: control characters
/// (newlines, escape sequences) written as `\n`, `\t`, `\u{1b}`… A file name is chosen by
/// whoever dropped the file; it must not add lines or move the cursor.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

pub fn display_path(p: &Path) -> String {
    printable(&display_path_raw(p)).into_owned()
}

fn display_path_raw(p: &Path) -> String {
    let abs = crate::support::paths::absolute(p);
    match std::env::current_dir()
        .ok()
        // Under systemd the working directory is `/`: keep paths absolute there.
        .filter(|cwd| cwd.parent().is_some())
        .and_then(|cwd| abs.strip_prefix(cwd).ok().map(Path::to_path_buf))
    {
        Some(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Some(rel) => rel.display().to_string(),
        None => p.display().to_string(),
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location())?;
        if !self.key.is_empty() {
            write!(f, "'{}': ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Several diagnostics, one per line block (used in error `Display` impls).
pub struct List<'a>(pub &'a [Diagnostic]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rendered form is `file:line:col: 'key': message` plus an indented help line.
    #[test]
    fn renders_location_key_message_and_help() {
        let d = Diagnostic::at_key(Path::new("a/clip.yaml"), "title", "too long")
            .with_position(3, 8)
            .with_help("shorten it");
        assert_eq!(
            d.to_string(),
            "a/clip.yaml:3:8: 'title': too long\n  help: shorten it"
        );
        let whole = Diagnostic::file(Path::new("w.yaml"), "cannot read");
        assert_eq!(whole.to_string(), "w.yaml: cannot read");
    }
}
