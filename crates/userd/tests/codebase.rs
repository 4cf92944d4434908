//! Rules about the source itself, checked so that they stay true.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

const LONGEST_LINE: usize = 120;
const SOURCE_EXTENSIONS: &[&str] = &["rs", "sql", "toml", "sh", "pgbench", "proto", "yml"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn source_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                source_files(&path, found);
            }
        } else if path
            .extension()
            .is_some_and(|ext| SOURCE_EXTENSIONS.contains(&ext.to_string_lossy().as_ref()))
        {
            found.push(path);
        }
    }
}

#[test]
fn no_source_line_is_longer_than_120_characters() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "migrations", "config", "scripts", "fuzz", "proto"] {
        if root.join(dir).is_dir() {
            source_files(&root.join(dir), &mut files);
        }
    }
    for file in ["Cargo.toml", "docker-compose.yml", "Dockerfile", ".ci/run"] {
        files.push(root.join(file));
    }
    assert!(files.len() > 50, "the walk found the sources: {files:?}");
    let too_long: Vec<String> = files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let path = path.strip_prefix(&root).unwrap().display().to_string();
            text.lines()
                .enumerate()
                .filter(|(_, line)| line.chars().count() > LONGEST_LINE)
                .map(|(number, line)| format!("{path}:{}: {} characters", number + 1, line.len()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "lines over {LONGEST_LINE}:\n{}",
        too_long.join("\n")
    );
}
