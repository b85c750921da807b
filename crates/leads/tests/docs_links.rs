//! The docs' links: every relative link in every Markdown file of the repository must lead to a
//! file inside the repository, and a link's `#anchor` to a heading of the Markdown file it names.
//! A clone of the repository is all a reader has, so a link to anything outside it is broken.
//!
//! Links to the web (`http:`, `https:`) and `mailto:` links are not checked. Links inside code
//! blocks and inline code are not links. Anchors follow GitHub's rule for heading ids: the
//! heading's text, lower-cased, without punctuation, spaces as hyphens, and `-1`, `-2`... for
//! repeated headings.

use std::collections::HashSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Folders that hold no documentation of the project: build output, installed packages, git.
const SKIPPED_DIRS: [&str; 4] = ["target", "node_modules", ".venv", ".git"];

#[test]
fn every_relative_link_in_the_markdown_resolves_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("the repository root exists");
    let files = markdown_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")) && files.len() > 1,
        "found too few Markdown files under {}: {files:?}",
        root.display()
    );
    let broken = broken_links(&root, &files);
    assert!(
        broken.is_empty(),
        "{} broken link(s) in the Markdown files:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn the_check_finds_missing_files_escapes_and_unknown_anchors_and_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::create_dir_all(root.join("target")).unwrap();
    fs::write(
        root.join("docs/page.md"),
        "# A page\n\n## Rate limits: per instance\n\n## Rate limits: per instance\n",
    )
    .unwrap();
    fs::write(root.join("target/ignored.md"), "[gone](nowhere.md)\n").unwrap();
    fs::write(
        root.join("README.md"),
        "\
# Title

[fine](docs/page.md), [fine too](./docs/page.md#a-page), [a folder](docs),
[own heading](#title), [repeated heading](docs/page.md#rate-limits-per-instance-1),
[web](https://example.com/x.md) and [mail](mailto:someone@example.com),
`[in code](missing-in-code.md)`, [with title](docs/page.md \"Title\")

```sh
echo [in a block](missing-in-block.md)
```

[missing](docs/missing.md)
[outside](../shared/CONTRACT.md)
[bad anchor](docs/page.md#no-such-heading)
[own bad anchor](#nothing)
[ref]: docs/also-missing.md
",
    )
    .unwrap();
    let files = markdown_files(root);
    assert_eq!(files.len(), 2, "{files:?}");
    let broken = broken_links(root, &files);
    let targets: Vec<&str> = broken
        .iter()
        .map(|line| {
            line.split(" -> ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        targets,
        [
            "docs/missing.md",
            "../shared/CONTRACT.md",
            "docs/page.md#no-such-heading",
            "#nothing",
            "docs/also-missing.md",
        ],
        "{broken:#?}"
    );
}

/// Every `.md` file under `root`, outside [`SKIPPED_DIRS`], in a stable order.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let path = entry.path();
            let name = entry.file_name();
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() {
                if !SKIPPED_DIRS.iter().any(|skip| name == *skip) {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// One line per broken link: `file:line -> target (why)`.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut broken = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (line, target) in links(&text) {
            if let Err(why) = check(root, file, &text, &target) {
                broken.push(format!("{shown}:{line} -> {target} ({why})"));
            }
        }
    }
    broken
}

/// Whether one link of `file` (whose text is `text`) resolves.
fn check(root: &Path, file: &Path, text: &str, target: &str) -> Result<(), String> {
    let lower = target.to_ascii_lowercase();
    if ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
    {
        return Ok(());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let (resolved, linked_text) = if path.is_empty() {
        (file.to_path_buf(), Some(text.to_owned()))
    } else {
        let path = percent_decode(path);
        let base = if path.starts_with('/') {
            root.to_path_buf()
        } else {
            file.parent().expect("a file has a folder").to_path_buf()
        };
        let resolved = normalize(&base.join(path.trim_start_matches('/')))
            .filter(|p| p.starts_with(root))
            .ok_or("leads outside the repository")?;
        if !resolved.exists() {
            return Err("no such file".into());
        }
        let is_markdown = resolved.extension().is_some_and(|ext| ext == "md");
        let linked_text = if is_markdown && resolved.is_file() {
            Some(fs::read_to_string(&resolved).map_err(|e| e.to_string())?)
        } else {
            None
        };
        (resolved, linked_text)
    };
    match (anchor, linked_text) {
        (Some(anchor), Some(linked)) if !anchor.is_empty() => {
            if heading_ids(&linked).contains(&percent_decode(anchor)) {
                Ok(())
            } else {
                Err(format!("no heading #{anchor} in {}", resolved.display()))
            }
        }
        _ => Ok(()),
    }
}

/// `path` with `.` and `..` taken out, without touching the file system; `None` when `..`
/// climbs above the file system's root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                _ => return None,
            },
            other => parts.push(other),
        }
    }
    Some(parts.iter().collect())
}

/// `%20` and the like as the characters they stand for.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of `text` outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut fence: Option<&str> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => lines.push((index + 1, line)),
            _ => {}
        }
    }
    lines
}

/// `line` with the contents of inline code spans replaced by spaces.
fn without_inline_code(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(end) => {
                out.push_str(&" ".repeat(ticks * 2 + end));
                rest = &after[end + ticks..];
            }
            None => {
                out.push_str(&rest[start..start + ticks]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of a Markdown text's links: inline `[text](target)` (images too) and reference
/// definitions `[name]: target`, each with its line number.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_inline_code(line);
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if let Some((_, definition)) = trimmed.split_once("]:") {
                if let Some(target) = definition.split_whitespace().next() {
                    found.push((number, target.trim_matches(['<', '>']).to_owned()));
                    continue;
                }
            }
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let (target, consumed) = destination(after);
            if !target.is_empty() {
                found.push((number, target));
            }
            rest = &after[consumed..];
        }
    }
    found
}

/// The destination at the start of `text` (just after `](`), without a title, and how many bytes
/// of `text` it took.
fn destination(text: &str) -> (String, usize) {
    if let Some(inner) = text.strip_prefix('<') {
        let end = inner.find('>').unwrap_or(inner.len());
        return (inner[..end].to_owned(), (end + 2).min(text.len()));
    }
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return (first_word(&text[..i]), i + 1),
            ')' => depth -= 1,
            _ => {}
        }
    }
    (first_word(text), text.len())
}

fn first_word(text: &str) -> String {
    text.split_whitespace().next().unwrap_or("").to_owned()
}

/// The ids GitHub gives the headings of a Markdown text.
fn heading_ids(text: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !trimmed[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(trimmed[hashes..].trim().trim_end_matches('#').trim());
        let mut id = base.clone();
        let mut n = 0;
        while !ids.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
    }
    ids
}

/// A heading's id: its text (a link's text, not its target), lower-cased, keeping letters,
/// digits, `-` and `_`, with spaces as `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    while let Some(at) = rest.find("](") {
        text.push_str(&rest[..at]);
        let (_, consumed) = destination(&rest[at + 2..]);
        rest = &rest[at + 2 + consumed..];
    }
    text.push_str(rest);
    text.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}
