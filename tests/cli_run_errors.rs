//! `dyntun run` start-up failures: one clear line naming what is wrong, a non-zero exit, and no
//! DPDK runtime files left behind. Needs root and DPDK (scripts/setup.sh).

use std::process::Command;

fn run_with(config_text: &str, name: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("dyntun-run-errors-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.conf");
    std::fs::write(&config, config_text).unwrap();
    let prefix = format!("dtrunerr{}{name}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_dyntun"))
        .arg("run")
        .arg(&config)
        .arg("--socket")
        .arg(dir.join("ctl.sock"))
        .arg("--file-prefix")
        .arg(&prefix)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let leftover = std::path::Path::new("/var/run/dpdk").join(&prefix).exists();
    assert!(!leftover, "runtime directory {prefix} left behind");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stderr.lines().last().unwrap_or_default().to_string();
    (out.status.code().unwrap_or(-1), last, stderr)
}

fn reference_example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/sg1-policy-shared.conf"
    ))
    .unwrap()
}

#[test]
fn a_missing_device_is_one_line_naming_it() {
    let text = reference_example().replace("iface=sg1-out", "iface=dyntun-no-such-if");
    let (code, last, all) = run_with(&text, "dev");
    assert_eq!(code, 1, "{all}");
    assert!(last.starts_with("dyntun: "), "{all}");
    assert!(
        last.contains("net_af_packet0,iface=dyntun-no-such-if"),
        "{all}"
    );
}

#[test]
fn a_configuration_error_stops_before_dpdk_with_its_position() {
    let text = reference_example().replace("address 10.1.1.1/24", "address 10.1.1.300/24");
    let (code, _, all) = run_with(&text, "cfg");
    assert_eq!(code, 1, "{all}");
    // Every commit-check error, each as FILE:LINE:COL, not only the first.
    assert!(
        all.contains("gateway.conf:14:25: error:")
            && all.contains("'10.1.1.300' is not an IPv4 or IPv6 address"),
        "{all}"
    );
    assert!(
        !all.contains("EAL:"),
        "DPDK must not start on a broken configuration:\n{all}"
    );
}

#[test]
fn a_configuration_without_dataplane_devices_is_refused_plainly() {
    let text = reference_example();
    let start = text.find("dataplane {").unwrap();
    let (code, last, all) = run_with(&text[..start], "nodp");
    assert_eq!(code, 1, "{all}");
    assert!(last.contains("dataplane"), "{all}");
}
