//! Fuzz target `ops`: arbitrary sequences of operations (create, kill, terminate, signal, poll,
//! wait, drop, stop, ...) from one to three threads against one live executor, then a full
//! accounting: every call returned, every child reaped, no fd leaked, no zombie. The logic and
//! the input format are in `tests/fuzz_logic/ops.rs`, shared with `cargo test`.
#![no_main]

#[path = "../../tests/fuzz_logic/mod.rs"]
mod fuzz_logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_logic::ops::run(data);
});
