//! Docs that cannot rot: every relative link and anchor in the README and
//! the guide (`docs/`) resolves, and every shell block marked `sh quick`
//! runs (with this build's `sflam` first on the PATH, in a scratch folder
//! that sees the repository's scenarios, analysis scripts and data).
//! Blocks that call `python3` need polars and matplotlib
//! (`analysis/requirements.txt`); without them they are skipped with a
//! note, unless `SFLAM_DOCS_REQUIRE_PYTHON` is set (CI sets it), when the
//! missing packages fail the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut v = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    v.extend(docs);
    v
}

/// Lines outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces to hyphens; a repeated one gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text) {
        let Some(h) = line.strip_prefix('#') else { continue };
        let title = h.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut s = slug.clone();
        let mut k = 0;
        while seen.contains(&s) {
            k += 1;
            s = format!("{slug}-{k}");
        }
        seen.insert(s);
    }
    seen
}

/// Every `[text](target)` and `![alt](target)` in the prose.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(j) = after.find(')') else { break };
            out.push(after[..j].to_string());
            rest = &after[j..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut bad = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() { page.clone() } else { page.parent().unwrap().join(path) };
            if !file.exists() {
                bad.push(format!("{}: `{target}`: no file {}", page.display(), file.display()));
                continue;
            }
            if !anchor.is_empty() {
                let there = std::fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&there).contains(anchor) {
                    bad.push(format!("{}: `{target}`: no heading with anchor #{anchor}", page.display()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
    assert!(checked > 20, "only {checked} links found: is the parser broken?");
}

/// The anchor rule itself, on headings whose GitHub anchors are known.
#[test]
fn anchors_follow_github() {
    let a =
        anchors("# Trace columns\n## `rounds`: one row per round\n## Allocators (SPEC 6)\n## Allocators (SPEC 6)\n");
    for want in ["trace-columns", "rounds-one-row-per-round", "allocators-spec-6", "allocators-spec-6-1"] {
        assert!(a.contains(want), "{want} not in {a:?}");
    }
}

/// The `sh quick` blocks of one page, in order.
fn quick_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(c) = cur.as_mut() {
            if t.starts_with("```") {
                out.push(cur.take().unwrap());
            } else {
                c.push_str(line.strip_prefix("   ").unwrap_or(line));
                c.push('\n');
            }
        } else if t.starts_with("```sh quick") {
            cur = Some(String::new());
        }
    }
    out
}

#[test]
fn quick_shell_blocks_run() {
    let python =
        Command::new("python3").args(["-c", "import polars, matplotlib"]).output().is_ok_and(|o| o.status.success());
    let require = std::env::var_os("SFLAM_DOCS_REQUIRE_PYTHON").is_some();
    assert!(python || !require, "SFLAM_DOCS_REQUIRE_PYTHON is set but polars or matplotlib is missing");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_sflam"));
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let (mut ran, mut skipped) = (0, 0);
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let blocks = quick_blocks(&text);
        if blocks.is_empty() {
            continue;
        }
        // One scratch folder per page: its blocks build on each other.
        let dir = tempfile::tempdir().unwrap();
        for name in ["scenarios", "analysis", "crates"] {
            std::os::unix::fs::symlink(repo().join(name), dir.path().join(name)).unwrap();
        }
        for block in blocks {
            if block.contains("python3") && !python {
                skipped += 1;
                continue;
            }
            let out = Command::new("bash")
                .args(["-euo", "pipefail", "-c", &block])
                .current_dir(dir.path())
                .env("PATH", &path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: this block failed:\n{block}\nstdout:\n{}\nstderr:\n{}",
                page.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
        assert_no_leftovers(dir.path());
    }
    if skipped > 0 {
        eprintln!("note: {skipped} quick block(s) that call python3 skipped: polars or matplotlib missing");
    }
    assert!(ran >= 3, "only {ran} quick blocks ran");
}

/// The commands write only under the scratch folder's runs/.
fn assert_no_leftovers(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(["scenarios", "analysis", "crates", "runs"].contains(&name.as_str()), "a quick block wrote {name}");
    }
}
