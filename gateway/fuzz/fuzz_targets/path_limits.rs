//! For any path admitted under a prefix, every decoding of it stays under the prefix.
//!
//! The rules are compiled in from their source file, which depends on `std` only, so the
//! fuzzer does not build (and instrument) the whole gateway.

#![no_main]

#[path = "../../src/vault/path.rs"]
#[allow(dead_code)]
mod path;

use libfuzzer_sys::fuzz_target;

const PREFIXES: &[&str] = &["/api/v1/", "/v1/chat", "/bucket/public/", "/"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(tail) = std::str::from_utf8(rest) else { return };
    let prefix = PREFIXES[usize::from(pick) % PREFIXES.len()];
    // Both a path under the prefix and one from the root, so the fuzzer need not find the
    // prefix by itself to explore what follows it.
    for path in [format!("{prefix}{tail}"), format!("/{tail}")] {
        if path::admits(prefix, &path) {
            assert!(path::stays_under(prefix, &path), "{path:?} escapes {prefix:?}");
        }
    }
});
