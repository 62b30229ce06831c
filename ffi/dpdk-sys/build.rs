//! Generates the bindings from the DPDK headers installed on this machine (build constants such as
//! RTE_MAX_ETHPORTS are baked into struct layouts, so checked-in bindings would silently go stale),
//! compiles the C shim with DPDK's own cflags, and links libdpdk through pkg-config.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn dpdk_cflags() -> Vec<String> {
    let output = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config must be installed to build dpdk-sys");
    if !output.status.success() {
        panic!(
            "pkg-config --cflags libdpdk failed (is libdpdk-dev installed?): {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=csrc/wrapper.h");

    let library = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .expect("libdpdk 22.11 or newer (Debian: libdpdk-dev) not found by pkg-config");
    // Called directly by the safe layer (rte_eth_from_rings, rte_vdev_*), so they must be linked
    // even though EAL also loads them as plugins; both names resolve to the same file.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    println!("cargo:rustc-link-lib=dylib=rte_bus_vdev");

    let cflags = dpdk_cflags();

    let mut shim = cc::Build::new();
    shim.file("csrc/shim.c")
        .include("csrc")
        .opt_level(3)
        .warnings(true);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("dyntun_dpdk_shim");

    let mut builder = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_arg("-Icsrc")
        // Only the API families the safe layer uses; types follow from the functions, which keeps
        // the protocol-header unions bindgen cannot express (GTP, L2TPv2) out of the bindings.
        .allowlist_function("rte_(eal|eth|pktmbuf|mbuf|mempool|ring|lcore|dev|vdev|thread)_.*")
        .allowlist_function("rte_(strerror|socket_id|get_main_lcore|get_next_lcore|get_tsc_hz)")
        .allowlist_function("dyntun_.*")
        .allowlist_type("rte_eth_(conf|dev_info|stats|link|rxconf|txconf)")
        .allowlist_var("RTE_.*")
        .allowlist_var("RING_F_.*")
        .allowlist_var("SOCKET_ID_ANY")
        .blocklist_type("max_align_t")
        .opaque_type("rte_(l2tpv2|gtp)_.*")
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for dir in &library.include_paths {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    for flag in &cflags {
        builder = builder.clang_arg(flag);
    }
    let bindings = builder
        .generate()
        .expect("bindgen could not parse the DPDK headers");

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs into OUT_DIR");
}
