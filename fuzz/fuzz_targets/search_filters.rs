//! The search body and query string, down to the filter tree: no panic, no runaway
//! recursion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use userd_api_http::fuzzing;

fuzz_target!(|data: &[u8]| {
    // The first line stands for the query string, the rest for the body.
    let (query, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&data[..0], data),
    };
    fuzzing::search(&String::from_utf8_lossy(query), body);
});
