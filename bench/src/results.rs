//! Where benchmark results live: `bench/results/NAME.json`, pretty-printed so diffs between runs
//! are readable in review.

use std::path::PathBuf;

pub fn results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results")
}

/// Writes `value` to `bench/results/<name>.json` and returns the path written.
pub fn write_json(name: &str, value: &serde_json::Value) -> std::io::Result<PathBuf> {
    let dir = results_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    std::fs::write(&path, text + "\n")?;
    Ok(path)
}
