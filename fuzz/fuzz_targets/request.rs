//! Fuzz target `request`: arbitrary bytes -> a command vector and options -> request validation,
//! `PATH` search and (for harmless or non-executable programs) a real spawn. The logic and the
//! input format are in `tests/fuzz_logic/request.rs`, shared with `cargo test`.
#![no_main]

#[path = "../../tests/fuzz_logic/mod.rs"]
mod fuzz_logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_logic::request::run(data);
});
