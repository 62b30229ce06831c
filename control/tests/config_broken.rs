//! Every file in `examples/broken/` fails the checks with exactly the errors its first lines
//! announce (`# expect: LINE:COL: error: PATH: MESSAGE`), at the right line and column.

use std::path::PathBuf;

use control::config;

fn expected_errors(text: &str) -> Vec<String> {
    text.lines()
        .map_while(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn each_broken_example_reports_its_expected_errors() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/broken");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = expected_errors(&text);
        assert!(!expected.is_empty(), "{name} announces no expected error");
        let errors = match config::parse(&text) {
            Ok(_) => {
                failures.push(format!("{name}: passed the checks"));
                continue;
            }
            Err(e) => e,
        };
        let got: Vec<String> = errors
            .iter()
            .map(|e| e.render(&name)[name.len() + 1..].to_string())
            .collect();
        if got != expected {
            failures.push(format!("{name}:\n  expected {expected:#?}\n  got {got:#?}"));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 25, "only {checked} broken examples");
}
