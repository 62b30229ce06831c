//! `dyntun check` as a user runs it: exit status, error lines, and `--display` in both forms.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dyntun(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dyntun"))
        .args(args)
        .output()
        .expect("run dyntun")
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// A scratch file removed when the test ends, pass or fail.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("dyntun-cli-{}-{tag}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn examples_pass_with_exit_status_zero_and_no_output() {
    for file in files_in(&examples()) {
        let out = dyntun(&["check", file.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
    }
}

#[test]
fn broken_examples_exit_one_with_every_expected_error_line() {
    let broken = files_in(&examples().join("broken"));
    assert!(broken.len() >= 25);
    for file in broken {
        let name = file.to_str().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let expected: Vec<String> = text
            .lines()
            .map_while(|l| l.strip_prefix("# expect: "))
            .map(|e| format!("{name}:{e}"))
            .collect();
        let out = dyntun(&["check", name]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines, expected, "{name}");
    }
}

#[test]
fn display_round_trips_in_both_forms() {
    let source = examples().join("sg1-policy-shared.conf");
    let curly = dyntun(&["check", "--display", source.to_str().unwrap()]);
    assert_eq!(curly.status.code(), Some(0));
    let curly = String::from_utf8(curly.stdout).unwrap();
    assert!(
        curly.starts_with("interfaces {\n    ge-0/0/0 {\n"),
        "{curly}"
    );
    assert!(curly.contains("pre-shared-key ascii-text dyntun-demo-global-key;"));
    assert!(
        !curly.contains("/*"),
        "comments are not part of the normalised form"
    );

    let set = dyntun(&["check", "--display", "set", source.to_str().unwrap()]);
    assert_eq!(set.status.code(), Some(0));
    let set = String::from_utf8(set.stdout).unwrap();
    assert!(set.contains(
        "set services service-set demo-service-set ipsec-vpn-options local-gateway 10.1.1.1\n"
    ));

    let set_file = TempFile::new("display.set", &set);
    let from_set = dyntun(&["check", "--display", "curly", set_file.path()]);
    assert_eq!(from_set.status.code(), Some(0));
    assert_eq!(String::from_utf8(from_set.stdout).unwrap(), curly);

    let curly_file = TempFile::new("display.conf", &curly);
    let again = dyntun(&["check", "--display", "set", curly_file.path()]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), set);
}

#[test]
fn all_errors_are_reported_not_only_the_first() {
    let text = "interfaces {\n    ge-0/0/0 {\n        unit 0 {\n            family inet {\n                address 10.1.1.300/24;\n            }\n        }\n    }\n}\nsnmp {\n    community public;\n}\nrouting-options {\n    static {\n        route 10.0.0.0/8 next-hop sp-9/9/9.1;\n    }\n}\n";
    let file = TempFile::new("three.conf", text);
    let out = dyntun(&["check", file.path()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let p = file.path();
    assert_eq!(
        lines,
        [
            format!("{p}:5:25: error: interfaces ge-0/0/0 unit 0 family inet address 10.1.1.300/24: '10.1.1.300' is not an IPv4 or IPv6 address"),
            format!("{p}:10:1: error: snmp: 'snmp' is a Junos statement that dyntun does not support"),
            format!("{p}:15:9: error: routing-options static route 10.0.0.0/8: next-hop sp-9/9/9.1 names interface sp-9/9/9 which is not configured"),
        ]
    );
}

#[test]
fn unreadable_file_and_bad_usage() {
    let missing = format!("/nonexistent/dyntun-{}.conf", std::process::id());
    let out = dyntun(&["check", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(&format!("{missing}: error: cannot read"))
    );
    let source = examples().join("sg1-policy-shared.conf");
    let out = dyntun(&["check", "--display", "xml", source.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = dyntun(&["check", "set", source.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a format without --display is a usage error"
    );
    let out = dyntun(&["check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn invalid_utf8_is_an_error_not_a_crash() {
    let path = std::env::temp_dir().join(format!("dyntun-cli-{}-bytes.conf", std::process::id()));
    std::fs::write(&path, [0xff, 0xfe, b'{', 0x80, b';']).unwrap();
    let file = TempFile(path);
    let out = dyntun(&["check", file.path()]);
    assert_eq!(out.status.code(), Some(1));
}
