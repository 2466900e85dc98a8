//! Hardened YAML loading for the files users write (`watch.yaml`, sidecars): a size limit, a
//! parse budget so alias bombs are errors and not out-of-memory, duplicate keys refused, and
//! every error turned into a [`Diagnostic`] with file, line, column, key path and a fix.
//!
//! The typed structs themselves live with their owners (`config`, `sidecar`); this module only
//! knows YAML. [`Locator`] maps a key path back to its position for the semantic checks those
//! owners run after parsing.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::de::{self, DeserializeOwned};
use serde_saphyr::{DuplicateKeyPolicy, Error, Location, Options, Spanned};

use crate::support::diagnostic::Diagnostic;

/// Largest YAML file read. Sidecars and configs are a few hundred bytes; anything near this is
/// a mistake (a video renamed `.yaml`, a log file) and is refused before parsing.
pub const MAX_BYTES: u64 = 64 * 1024;

/// Reads a YAML file as UTF-8 text, refusing files over [`MAX_BYTES`].
pub fn read(path: &Path) -> Result<String, Diagnostic> {
    let cannot = |e: std::io::Error| Diagnostic::file(path, format!("cannot read the file: {e}"));
    read_from(path, File::open(path).map_err(cannot)?)
}

/// [`read`] for a file a dropper put in a watched folder (a sidecar): not through a symbolic
/// link, never blocking on a FIFO (see [`crate::support::fsops::open_regular`]).
pub fn read_untrusted(path: &Path) -> Result<String, Diagnostic> {
    let cannot = |e: std::io::Error| Diagnostic::file(path, format!("cannot read the file: {e}"));
    read_from(
        path,
        crate::support::fsops::open_regular(path).map_err(cannot)?,
    )
}

fn read_from(path: &Path, file: File) -> Result<String, Diagnostic> {
    let cannot = |e: std::io::Error| Diagnostic::file(path, format!("cannot read the file: {e}"));
    let len = file.metadata().map_err(cannot)?.len();
    if len > MAX_BYTES {
        return Err(too_large(path, len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // Read one byte past the limit so a file that grew after the size check is still refused.
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_large(path, bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        Diagnostic::file(
            path,
            format!(
                "the file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
        .with_help("save it as UTF-8 (the default of every modern editor)")
    })
}

fn too_large(path: &Path, len: u64) -> Diagnostic {
    Diagnostic::file(
        path,
        format!(
            "the file is {len} bytes; YAML files here may be at most {} KiB",
            MAX_BYTES / 1024
        ),
    )
    .with_help("is this really a sidecar or config? Keep it to the fields tokdrop reads")
}

fn options() -> Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 100_000,
            max_aliases: 200,
            max_anchors: 200,
            max_depth: 32,
            max_documents: 1,
            max_nodes: 20_000,
            max_total_scalar_bytes: 256 * 1024,
        },
        duplicate_keys: DuplicateKeyPolicy::Error,
        with_snippet: false,
        strict_booleans: true,
    }
}

/// Marks the start of the fix in a custom deserialization error message
/// (`"'5' has no unit" + HELP + "write 5s"`), so [`Diagnostic::help`] gets it.
pub const HELP: &str = "\nhelp: ";

/// Parses `text` (the content of `path`) into `T`, reporting the first problem precisely.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Diagnostic> {
    parse_located(path, text).map(|(v, _)| v)
}

/// [`parse`], also returning the position map used to place later (semantic) diagnostics.
///
/// The document is first read generically, which expands every alias under the parse budget:
/// an alias bomb is refused as such even where the typed read would have stopped earlier.
pub fn parse_located<T: DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<(T, Locator), Diagnostic> {
    let root = match serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options()) {
        Ok(root) => Some(root),
        Err(e) if is_budget(&e) => return Err(to_diagnostic(path, "", &e)),
        Err(_) => None, // the typed read below reports syntax errors with their key path
    };
    let value = parse_typed(path, text)?;
    Ok((value, Locator { root }))
}

/// How a missing required key's message begins.
const MISSING: &str = "the required key ";

/// How many problems [`parse_located_all`] reports at most.
const MAX_PROBLEMS: usize = 20;

/// [`parse_located`] that goes on after a wrong value: the key is blanked out (its lines left
/// empty, so positions stay true) and the rest read again, so every wrong optional field is
/// reported at once rather than one per attempt. It stops at a problem it cannot step over: a
/// syntax error, a required field (blanking it only says it is missing), a flow-style mapping.
pub fn parse_located_all<T: DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<(T, Locator), Vec<Diagnostic>> {
    let first = match parse_located(path, text) {
        Ok(v) => return Ok(v),
        Err(d) => d,
    };
    let mut problems = vec![first];
    let mut rest = text.to_string();
    while problems.len() < MAX_PROBLEMS {
        let Some(blanked) = blank_key(&rest, &problems[problems.len() - 1].key) else {
            break;
        };
        rest = blanked;
        match parse_typed::<T>(path, &rest) {
            Ok(_) => break,
            // The same key, one above it (a mapping left empty), or a required key missing
            // (blanked, or misspelled as the key blanked before): a consequence, not news.
            Err(d)
                if d.message.starts_with(MISSING)
                    || problems.iter().any(|p| p.key.starts_with(&d.key)) =>
            {
                break;
            }
            Err(d) => problems.push(d),
        }
    }
    Err(problems)
}

/// `text` with the block-style entry of `key` (`watch[0].include[2]` → the `include:` line and
/// what is indented or listed under it) emptied; `None` when it is not such an entry.
fn blank_key(text: &str, key: &str) -> Option<String> {
    let mut field = key;
    while let Some(inner) = field.strip_suffix(']') {
        field = &inner[..inner.rfind('[')?];
    }
    let name = field.rsplit('.').next().filter(|n| !n.is_empty())?;
    let (line, column) = Locator::new(text).locate(field)?;
    let mut lines: Vec<&str> = text.split('\n').collect();
    let at = usize::try_from(line).ok()?.checked_sub(1)?;
    let own = lines.get(at)?;
    let indent = own.len() - own.trim_start().len();
    // The key must start its line: blanking a flow mapping, or the line of a list item, would
    // change the shape of the document (and `locate` may have found only an ancestor).
    let starts_line = own
        .trim_start()
        .strip_prefix(name)
        .is_some_and(|r| r.trim_start().starts_with(':'));
    if !starts_line || u64::try_from(indent + 1).ok()? != column {
        return None;
    }
    lines[at] = "";
    for l in lines.iter_mut().skip(at + 1) {
        let body = l.trim_start();
        let deeper = l.len() - body.len() > indent;
        let listed = l.len() - body.len() == indent && body.starts_with('-');
        if body.is_empty() || body.starts_with('#') || deeper || listed {
            *l = "";
        } else {
            break;
        }
    }
    Some(lines.join("\n"))
}

fn is_budget(e: &Error) -> bool {
    match e.without_snippet() {
        Error::Budget { .. } => true,
        Error::AliasError { error, .. } => is_budget(error),
        _ => false,
    }
}

fn parse_typed<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Diagnostic> {
    let mut key = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            key = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|e| to_diagnostic(path, &key, &e))
}

fn to_diagnostic(path: &Path, key: &str, err: &Error) -> Diagnostic {
    // serde_path_to_error writes `.` for the root and `?` for a key it could not read.
    let key = key.trim_end_matches('?').trim_end_matches('.');
    let key = if key == "." { "" } else { key };
    let err = err.without_snippet();
    let (message, help) = describe(err);
    let child = |name: &str| {
        if key.is_empty() {
            name.to_string()
        } else {
            format!("{key}.{name}")
        }
    };
    let key = match err {
        Error::SerdeMissingField { field, .. } => child(field),
        Error::DuplicateMappingKey { key: Some(k), .. } => child(k),
        _ => key.to_string(),
    };
    let mut d = Diagnostic::at_key(path, key, message);
    d.help = help;
    if let Some(loc) = err.location().filter(|l| l.line() > 0) {
        d = d.with_position(loc.line(), loc.column());
    }
    d
}

/// Plain-words message and help for one parse error.
fn describe(err: &Error) -> (String, Option<String>) {
    match err {
        Error::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown key '{field}'"),
            Some(match did_you_mean(field, expected) {
                Some(m) => format!("did you mean '{m}'?"),
                None => format!("keys allowed here: {}", expected.join(", ")),
            }),
        ),
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!("'{variant}' is not one of {}", expected.join(", ")),
            Some(match did_you_mean(variant, expected) {
                Some(m) => format!("did you mean '{m}'?"),
                None => "use one of the values listed, spelled exactly".to_string(),
            }),
        ),
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            format!("expected {expected}, found {unexpected}"),
            quoting_help(expected),
        ),
        Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (format!("{unexpected} is not valid here: expected {expected}"), None),
        Error::SerdeMissingField { field, .. } => (
            format!("{MISSING}'{field}' is missing"),
            Some(format!("add '{field}:' with a value")),
        ),
        Error::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("the key '{k}' appears more than once"),
                None => "a key appears more than once".to_string(),
            },
            Some("keep only one of them".to_string()),
        ),
        Error::Budget { breach, .. } => (
            format!("the YAML is too large or too deeply nested to accept ({breach:?})"),
            Some(
                "anchors and aliases that expand into huge structures are refused; write the values out plainly"
                    .to_string(),
            ),
        ),
        Error::NullIntoString { .. } => (
            "the value is empty".to_string(),
            Some("write a value after the colon, or remove the key".to_string()),
        ),
        Error::Message { msg, .. } => match msg.split_once(HELP) {
            Some((m, h)) => (m.to_string(), Some(h.to_string())),
            None => (msg.clone(), None),
        },
        Error::InvalidBooleanStrict { .. } => (
            "expected true or false".to_string(),
            Some("write true or false (not yes/no or on/off)".to_string()),
        ),
        Error::InvalidScalar { ty, .. } => (
            format!("the value must be {}", scalar_name(ty)),
            Some(format!("write {}", scalar_name(ty))),
        ),
        Error::Unexpected { expected, .. } => (
            format!("expected {} here", expected_name(expected)),
            Some("check the indentation and the kind of value this key takes (see the reference in README.md)".to_string()),
        ),
        Error::AliasError { error, .. } => describe(error.without_snippet()),
        other => {
            let text = strip_position(&other.to_string());
            let help = if text.contains("tab") {
                Some("indent with spaces; YAML does not allow tabs for indentation".to_string())
            } else {
                Some("check the YAML syntax around this position (indentation, colons, quotes)".to_string())
            };
            (format!("YAML syntax error: {text}"), help)
        }
    }
}

fn scalar_name(ty: &str) -> &str {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        other => other,
    }
}

fn expected_name(expected: &str) -> &str {
    match expected {
        "mapping start" => "keys with values (a mapping)",
        "sequence start" => "a list",
        "string scalar" => "a single text value",
        other => other,
    }
}

fn quoting_help(expected: &str) -> Option<String> {
    if expected.contains("string") {
        Some("put the value in quotes".to_string())
    } else if expected.contains("bool") {
        Some("write true or false".to_string())
    } else {
        Some(format!("write {expected}"))
    }
}

/// serde-saphyr frames messages with `error: line L column C: ` and ` at line L, column C`;
/// the diagnostic has its own position.
fn strip_position(text: &str) -> String {
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let text = match text.find(": ") {
        Some(i) if text.starts_with("line ") => &text[i + 2..],
        _ => text,
    };
    let line = text.lines().next().unwrap_or("");
    match line.rfind(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}

/// The closest candidate within a small edit distance, for "did you mean".
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let close = |c: &str| {
        let c = c.to_ascii_lowercase();
        // A prefix (`privacy` for `privacy_level`) counts as a near miss too.
        if word.len() >= 4 && (c.starts_with(&word) || word.starts_with(&c)) {
            return Some(1);
        }
        let d = strsim::levenshtein(&word, &c);
        (d <= 2.max(c.len() / 4)).then_some(d)
    };
    candidates
        .iter()
        .filter_map(|c| close(c).map(|d| (d, *c)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Positions of every key and value in a document, for diagnostics raised after parsing.
pub struct Locator {
    root: Option<Spanned<Node>>,
}

#[derive(Debug)]
enum Node {
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar(String),
}

impl Locator {
    /// Builds the position map; a document that does not parse yields an empty locator.
    pub fn new(text: &str) -> Self {
        Self {
            root: serde_saphyr::from_str_with_options(text, options()).ok(),
        }
    }

    /// Line and column of `key` (`watch[1].path`): the key itself for map entries, the element
    /// for sequence indexes. Falls back to the deepest ancestor found.
    pub fn locate(&self, key: &str) -> Option<(u64, u64)> {
        let mut node = self.root.as_ref()?;
        let mut best = None;
        for seg in segments(key) {
            let next = match (&node.value, seg) {
                (Node::Map(entries), Segment::Key(k)) => entries
                    .iter()
                    .find(|(name, _)| matches!(&name.value, Node::Scalar(s) if s == k))
                    .map(|(name, value)| {
                        best = Some(pos(&name.referenced));
                        value
                    }),
                (Node::Seq(items), Segment::Index(i)) => items.get(i).inspect(|v| {
                    best = Some(pos(&v.referenced));
                }),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best
    }

    /// Fills in the position of a diagnostic raised for a key path.
    pub fn place(&self, mut d: Diagnostic) -> Diagnostic {
        if d.line.is_none()
            && let Some((line, column)) = self.locate(&d.key)
        {
            d = d.with_position(line, column);
        }
        d
    }
}

fn pos(loc: &Location) -> (u64, u64) {
    (loc.line(), loc.column())
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(key: &str) -> impl Iterator<Item = Segment<'_>> {
    key.split('.').filter(|s| !s.is_empty()).flat_map(|part| {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        let key = (!name.is_empty()).then_some(Segment::Key(name));
        let indexes = rest
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse().ok())
            .map(Segment::Index);
        key.into_iter().chain(indexes)
    })
}

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> de::Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key()? {
            entries.push((k, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(x) = seq.next_element()? {
            items.push(x);
        }
        Ok(Node::Seq(items))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(String::new()))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(String::new()))
    }
}

#[cfg(test)]
mod tests {
    /// Every wrong field of a flat document is reported, each at its own line; a document
    /// with one problem reports one.
    #[test]
    fn every_wrong_field_at_once() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Flat {
            title: Option<String>,
            flag: Option<bool>,
            count: Option<u32>,
            items: Option<Vec<String>>,
        }
        let text = "title: ok\nflag: yes please\nitems:\n- a\n- b\ncolour: red\ncount: -1\n";
        let Err(problems) = super::parse_located_all::<Flat>(Path::new("s.yaml"), text) else {
            panic!("three problems")
        };
        let found: Vec<(&str, Option<u64>)> =
            problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            found,
            [("flag", Some(2)), ("colour", Some(6)), ("count", Some(7))],
            "{problems:?}"
        );
        let Err(one) = super::parse_located_all::<Flat>(Path::new("s.yaml"), "flag: 3\n") else {
            panic!("one problem")
        };
        assert_eq!(one.len(), 1);
        assert!(super::parse_located_all::<Flat>(Path::new("s.yaml"), "items: [a]\n").is_ok());
        // In a flow mapping a key cannot be blanked alone: the first problem comes alone.
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            inner: Flat,
            other: Option<bool>,
        }
        let Err(flow) = super::parse_located_all::<Outer>(
            Path::new("s.yaml"),
            "inner: {flag: 3, count: x}\nother: 5\n",
        ) else {
            panic!("problems")
        };
        assert_eq!(flow.len(), 1, "{flow:?}");
        assert_eq!(flow[0].key, "inner.flag");
    }

    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        path: String,
        settle: Option<u32>,
    }

    fn err(text: &str) -> Diagnostic {
        parse::<Doc>(Path::new("d.yaml"), text).expect_err("must fail")
    }

    /// An unknown key deep in a list names its full key path, its position and a close match.
    #[test]
    fn unknown_key_has_path_position_and_suggestion() {
        let d = err("name: x\nitems:\n  - path: a\n    setle: 5\n");
        assert_eq!(
            d.to_string(),
            "d.yaml:4:5: 'items[0].setle': unknown key 'setle'\n  help: did you mean 'settle'?"
        );
    }

    /// Duplicate keys, tabs and alias bombs are errors with a position, never silently accepted.
    #[test]
    fn hostile_yaml_is_refused() {
        let d = err("name: x\nname: y\nitems: []\n");
        assert!(d.to_string().starts_with("d.yaml:2:1: "), "{d}");
        assert!(d.message.contains("'name' appears more than once"));
        let d = err("name: x\nitems:\n\t- path: a\n");
        assert!(d.help.as_deref().unwrap_or("").contains("tabs"), "{d}");
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for (i, c) in "bcdefghij".chars().enumerate() {
            let prev = (b'a' + i as u8) as char;
            bomb.push_str(&format!(
                "{c}: &{c} [{}]\n",
                vec![format!("*{prev}"); 10].join(",")
            ));
        }
        let d = parse::<serde_json::Value>(Path::new("d.yaml"), &bomb).expect_err("bomb");
        assert!(d.message.contains("too large or too deeply nested"), "{d}");
    }

    /// The locator finds keys and list elements by path, and falls back to the nearest parent.
    #[test]
    fn locator_finds_keys_by_path() {
        let text = "name: x\nitems:\n  - path: a\n  - path: b\n    settle: 3\n";
        let loc = Locator::new(text);
        assert_eq!(loc.locate("items[1].settle"), Some((5, 5)));
        assert_eq!(loc.locate("items[1].path"), Some((4, 5)));
        assert_eq!(loc.locate("items[1].missing"), Some((4, 5)));
        assert_eq!(loc.locate("name"), Some((1, 1)));
    }

    /// Suggestions come only for near misses.
    #[test]
    fn did_you_mean_only_for_close_words() {
        let keys = ["privacy_level", "title", "disable_comment"];
        assert_eq!(did_you_mean("privacy_levle", &keys), Some("privacy_level"));
        assert_eq!(did_you_mean("titel", &keys), Some("title"));
        assert_eq!(did_you_mean("banana", &keys), None);
    }

    /// Files over the size limit are refused before any parsing.
    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big.yaml");
        std::fs::write(&p, "#".repeat(MAX_BYTES as usize + 1)).expect("write");
        let d = read(&p).expect_err("too big");
        assert!(d.message.contains("at most 64 KiB"), "{d}");
    }
}
