//! Sets `cfg(napix_asan)` when the crate is built with AddressSanitizer (`-Zsanitizer=address`,
//! cargo fuzz's default): the Vfork backend then tells ASan about its child's stack
//! (`src/sys/spawn/asan.rs`). Stable builds never see the cfg.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(napix_asan)");
    println!("cargo::rerun-if-env-changed=CARGO_CFG_SANITIZE");
    // Cargo passes every `cfg` of the target to build scripts; `-Zsanitizer=address` adds
    // `sanitize="address"` (several sanitizers: a comma-separated list).
    let sanitize = std::env::var("CARGO_CFG_SANITIZE").unwrap_or_default();
    if sanitize.split(',').any(|s| s == "address") {
        println!("cargo::rustc-cfg=napix_asan");
    }
}
