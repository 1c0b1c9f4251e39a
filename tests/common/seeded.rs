//! Reproducible proptest runs: a fixed default seed, printed; `NAPIX_FUZZ_SEED` overrides it.
//!
//! `NAPIX_FUZZ_SEED=<u64, decimal or 0x-hex>` replays a printed seed, `NAPIX_FUZZ_SEED=random`
//! draws a fresh one (printed too). `NAPIX_FUZZ_CASES=<n>` sets the number of cases.

use std::time::Instant;

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The seed of the random runs unless `NAPIX_FUZZ_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 0x6e61_7069_785f_6675;

/// `NAPIX_FUZZ_CASES`, else `default`.
pub fn random_cases(default: u32) -> u32 {
    std::env::var("NAPIX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The random runs' seed: `NAPIX_FUZZ_SEED` (decimal, `0x` hex, or `random`), else
/// [`DEFAULT_SEED`].
pub fn seed() -> u64 {
    match std::env::var("NAPIX_FUZZ_SEED") {
        Err(_) => DEFAULT_SEED,
        Ok(v) if v == "random" => {
            // Fresh entropy from std's per-process hasher keys; printed, so still replayable.
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(Instant::now())
        }
        Ok(v) => {
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("NAPIX_FUZZ_SEED={v:?}: {e}"))
        }
    }
}

/// A proptest runner that draws from a ChaCha stream seeded with [`seed`] (the test name mixed
/// in, so two random tests do not share a stream), and says which seed it used: proptest's
/// own default picks a fresh random seed each run, which made CI's verdict a matter of luck.
pub fn seeded_runner(test: &str, config: Config) -> TestRunner {
    let seed = seed();
    eprintln!("{test}: NAPIX_FUZZ_SEED={seed:#x} (set it to replay this run)");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    for (i, b) in test.bytes().enumerate() {
        bytes[8 + i % 24] ^= b;
    }
    let config = Config {
        rng_algorithm: RngAlgorithm::ChaCha,
        ..config
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}
