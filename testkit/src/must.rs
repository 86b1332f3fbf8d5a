//! Unwrapping for tests: a failure panics with a message naming what failed and why.

use std::fmt::Debug;

/// The value of `result`, or a panic naming `what` failed and why.
#[track_caller]
pub fn must<T, E: Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error:?}"),
    }
}

/// The value of `option`, or a panic naming what is missing.
#[track_caller]
pub fn some<T>(option: Option<T>, what: &str) -> T {
    match option {
        Some(value) => value,
        None => panic!("{what}: missing"),
    }
}
