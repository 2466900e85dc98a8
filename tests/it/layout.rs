//! The crate's module graph has no cycles: reading `src/` as text, every top-level module's
//! non-test code may use only modules that do not (directly or through others) use it back.
//! A cycle is reported as the path that closes it, with the file of each step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its tests and comments.
fn production_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths named after `crate::`, two levels deep (`crate::a::b::C` → `a::b`;
/// `crate::{a, b::{c, d}}` → `a`, `b::c`, `b::d`; a single level stays as it is).
fn crate_uses(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        paths_at(&code[i + "crate::".len()..], "", 2, &mut used);
    }
    used.retain(|m| !m.is_empty() && !m.ends_with("::self") && m != "self");
    used
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths of `rest` (what follows `prefix::`), `depth` more segments deep.
fn paths_at(rest: &str, prefix: &str, depth: usize, out: &mut BTreeSet<String>) {
    let join = |p: &str, s: &str| {
        if p.is_empty() {
            s.to_string()
        } else {
            format!("{p}::{s}")
        }
    };
    if depth == 0 {
        out.insert(prefix.to_string());
        return;
    }
    if let Some(group) = rest.strip_prefix('{') {
        // Split the group's items at its own top-level commas.
        let mut level = 0;
        let mut start = 0;
        let mut items = Vec::new();
        for (i, c) in group.char_indices() {
            match c {
                '{' => level += 1,
                '}' if level == 0 => {
                    items.push(&group[start..i]);
                    break;
                }
                '}' => level -= 1,
                ',' if level == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        for item in items {
            let item = item.trim_start();
            if !item.is_empty() {
                paths_at(item, prefix, depth, out);
            }
        }
        return;
    }
    let name = ident(rest);
    if name.is_empty() {
        out.insert(prefix.to_string());
        return;
    }
    let path = join(prefix, name);
    match rest[name.len()..].strip_prefix("::") {
        Some(more) if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) => {
            paths_at(more, &path, depth - 1, out)
        }
        // A last lowercase name is a module (a function at a group's root would read as one); a capitalised one is an item.
        _ if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) => {
            out.insert(path);
        }
        _ => {
            out.insert(if prefix.is_empty() {
                path
            } else {
                prefix.to_string()
            });
        }
    }
}

/// The module a file of `src/` belongs to at `depth` (1: `lifecycle`, 2: `lifecycle::intake`).
fn module_of(rel: &Path, depth: usize) -> String {
    let parts: Vec<String> = rel
        .components()
        .take(depth)
        .map(|c| {
            Path::new(c.as_os_str())
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    parts.join("::")
}

/// The first cycle of `graph` as its steps, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, graph, &mut Vec::new(), &mut done) {
            return Some(
                cycle
                    .windows(2)
                    .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]].display()))
                    .collect(),
            );
        }
    }
    None
}

/// The module graph at `depth` (1: the top-level folders, 2: the modules inside each): an
/// edge for every `crate::` path a file's non-test code names outside its own module.
fn graph_at(depth: usize) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let module = module_of(rel, depth);
        if module == "lib" || module == "main" || name.ends_with("tests.rs") {
            continue;
        }
        // At depth 2 a group's own file (src/lifecycle.rs) only declares its modules.
        if depth == 2 && !module.contains("::") {
            continue;
        }
        let group = module.split("::").next().unwrap_or_default().to_string();
        let text = production_code(&std::fs::read_to_string(&file).expect("read"));
        // In src/<group>/<module>.rs, `super::` is the group.
        let text = if rel.components().count() == 2 {
            text.replace("super::", &format!("crate::{group}::"))
        } else {
            text
        };
        let edges = graph.entry(module.clone()).or_default();
        for used in crate_uses(&text) {
            let used: String = used.split("::").take(depth).collect::<Vec<_>>().join("::");
            let same_group = used.split("::").next() == Some(group.as_str());
            if used != module && (depth == 1 || (same_group && used.contains("::"))) {
                edges.entry(used).or_insert_with(|| rel.to_path_buf());
            }
        }
    }
    graph
}

/// The top-level folders (commands, service, lifecycle, config, content, tiktok, serve,
/// support) depend on each other one way only.
#[test]
fn top_level_folders_form_no_cycle() {
    let graph = graph_at(1);
    assert!(graph.len() >= 8, "read the folders: {:?}", graph.keys());
    if let Some(steps) = find_cycle(&graph) {
        panic!("cycle between folders:\n  {}", steps.join("\n  "));
    }
}

/// Inside each folder, the modules depend on each other one way only.
#[test]
fn modules_inside_a_folder_form_no_cycle() {
    let graph = graph_at(2);
    assert!(graph.len() > 30, "read the modules: {:?}", graph.keys());
    if let Some(steps) = find_cycle(&graph) {
        panic!("module cycle:\n  {}", steps.join("\n  "));
    }
}

/// The parser reads plain paths, groups and nested groups, two levels deep.
#[test]
fn crate_uses_reads_use_forms() {
    let code = "use crate::a::B;\nuse crate::{b, c::{d, E}, f::G};\nlet x = crate::h::i::j();\nuse crate::k::{l::M, n};";
    let got: Vec<String> = crate_uses(code).into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "c::d", "f", "h::i", "k::l", "k::n"]);
    // A function called through its group names the module it is in.
    assert_eq!(
        crate_uses("crate::lifecycle::claim::run()")
            .into_iter()
            .collect::<Vec<_>>(),
        ["lifecycle::claim"]
    );
}
