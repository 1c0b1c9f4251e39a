//! The smallest program on the default (Vfork) backend: spawn `true`, wait, print its status.
//!
//! Also the binary whose glibc symbol versions `tests/sys_glibc_symbols.rs` inspects: the crate
//! must not make it need a newer glibc than the Rust standard library does.
//!
//! ```text
//! cargo run --release --example vfork_only
//! ```

use napix_executor::Executor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ex = std::sync::Arc::new(Executor::new()?);
    let runner = std::thread::spawn({
        let ex = ex.clone();
        move || ex.run()
    });
    let status = ex.create_process(&["true"], true)?.wait();
    println!("true: {status}");
    ex.stop();
    runner.join().map_err(|_| "executor thread panicked")??;
    Ok(())
}
