//! Generates the C header from this crate's source with cbindgen and a pkg-config file that
//! points at the built libraries and the header.
//!
//! - `ffi/capi/include/dyntun.h`: in the source tree, so that it is reviewed with the code that
//!   produces it (rewritten only when its content changes).
//! - `<target>/<profile>/dyntun.pc`: next to `libdyntun.so` / `libdyntun.a`; use it with
//!   `PKG_CONFIG_PATH=<target>/<profile> pkg-config --cflags --libs dyntun`.

use std::path::{Path, PathBuf};

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/capi/cbindgen.toml is valid");
    let header = crate_dir.join("include").join("dyntun.h");
    match cbindgen::Builder::new()
        .with_src(crate_dir.join("src").join("lib.rs"))
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            std::fs::create_dir_all(crate_dir.join("include")).expect("include dir");
            // write_to_file leaves the file alone when the content is unchanged.
            bindings.write_to_file(&header);
        }
        Err(e) => panic!("cbindgen: {e}"),
    }

    if let Some(profile_dir) = profile_dir() {
        write_pkg_config(&profile_dir, &crate_dir.join("include"));
    }
}

/// `<target>/<profile>`: OUT_DIR is `<target>/<profile>/build/<package>-<hash>/out`.
fn profile_dir() -> Option<PathBuf> {
    let out = PathBuf::from(std::env::var("OUT_DIR").ok()?);
    out.ancestors().nth(3).map(Path::to_path_buf)
}

fn write_pkg_config(libdir: &Path, includedir: &Path) {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let text = format!(
        "libdir={}\nincludedir={}\n\nName: dyntun\nDescription: dyntun IPsec gateway (dynamic endpoints), embeddable in a DPDK process\nVersion: {version}\nRequires: libdpdk\nLibs: -L${{libdir}} -Wl,-rpath,${{libdir}} -ldyntun\nLibs.private: -lrte_net_ring -lrte_bus_vdev -lssl -lcrypto -lpthread -ldl -lm\nCflags: -I${{includedir}}\n",
        libdir.display(),
        includedir.display()
    );
    let path = libdir.join("dyntun.pc");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text).expect("write dyntun.pc");
    }
}
