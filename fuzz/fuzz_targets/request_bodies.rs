//! Every JSON request body userd parses: none may panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use userd_api_http::fuzzing;

fuzz_target!(|data: &[u8]| {
    fuzzing::create_user_body(data);
    fuzzing::patch_user_body(data);
    fuzzing::member_body(data);
    fuzzing::token_body(data);
});
