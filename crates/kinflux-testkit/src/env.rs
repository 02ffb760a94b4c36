//! The one rule for a server or tool a test needs and does not find: locally the test
//! prints a `SKIPPED` line that names what is missing and returns; under `CI=true` it
//! panics, because CI starts every server and a skipped test there would hide a failure.

/// What to do when a server's variable is missing.
const HINT: &str = "start the servers with `scripts/services start` and export what \
                    `scripts/services status` prints";

/// Whether this run is CI's (`CI=true`), where nothing may be skipped.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Applies the rule to `what` (a sentence naming what is missing): panics under
/// `CI=true`, otherwise prints `SKIPPED <test>: <what>` to stderr.
///
/// # Panics
/// Under `CI=true`, always.
pub fn missing(what: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    if ci() {
        panic!("{test}: {what}, but CI=true: CI must provide it");
    }
    eprintln!("SKIPPED {test}: {what}");
}

/// The value of the environment variable `var`, or `None` after applying the rule (a
/// loud `SKIPPED` line naming `var` locally, a panic under `CI=true`). An empty value
/// counts as missing.
///
/// # Panics
/// Under `CI=true` when `var` is unset or empty.
pub fn require(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ => {
            missing(&format!("{var} is not set ({HINT})"));
            None
        }
    }
}

/// `available` itself, after applying the rule to `what` when it is false: for tools a
/// test needs that no variable names (a Python module, a built binary).
///
/// # Panics
/// Under `CI=true` when `available` is false.
pub fn available(available: bool, what: &str) -> bool {
    if !available {
        missing(what);
    }
    available
}

/// The brokers of the opt-in tansu leg, `KINFLUX_TANSU_BROKERS`: the compatibility subset
/// (the exactness and cross-client group tests) runs on Apache Kafka always and on tansu
/// too when this is set.
///
/// tansu takes minutes to build, so the leg is opt-in: without the variable the test
/// prints a `SKIPPED` line and returns, under `CI=true` as well, unless `KINFLUX_TANSU=1`
/// asks for the leg, where a missing variable follows the [`require`] rule (a panic under
/// `CI=true`).
///
/// # Panics
/// Under `CI=true` with `KINFLUX_TANSU=1` when `KINFLUX_TANSU_BROKERS` is unset or empty.
pub fn tansu_brokers() -> Option<String> {
    let wanted = std::env::var("KINFLUX_TANSU").is_ok_and(|v| v.trim() == "1");
    tansu_rule(std::env::var("KINFLUX_TANSU_BROKERS").ok(), wanted)
}

fn tansu_rule(brokers: Option<String>, wanted: bool) -> Option<String> {
    match brokers {
        Some(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ if wanted => {
            missing(&format!(
                "KINFLUX_TANSU=1 but KINFLUX_TANSU_BROKERS is not set ({HINT})"
            ));
            None
        }
        _ => {
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_owned();
            eprintln!(
                "SKIPPED {test}: the tansu leg is opt-in and not configured \
                 (KINFLUX_TANSU=1 scripts/services start, then export KINFLUX_TANSU_BROKERS)"
            );
            None
        }
    }
}

/// The values of environment variables, or `return` from the calling test after the
/// [`require`] rule: one line at the top of a test (a function that returns `()`).
///
/// With one variable it gives its value, with several a tuple of them, in order:
///
/// ```
/// async fn points_land_in_influxdb() {
///     let (brokers, influx) =
///         kinflux_testkit::require_or_skip!("KINFLUX_KAFKA_BROKERS", "KINFLUX_INFLUX_URL");
///     // ... produce to `brokers`, then query `influx` ...
/// #   let _ = (brokers, influx);
/// }
/// ```
#[macro_export]
macro_rules! require_or_skip {
    ($var:expr $(,)?) => {
        match $crate::require($var) {
            Some(value) => value,
            None => return,
        }
    };
    ($($var:expr),+ $(,)?) => {
        ($(match $crate::require($var) {
            Some(value) => value,
            None => return,
        },)+)
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_set_variable_is_returned_trimmed() {
        // PATH is set wherever tests run.
        let path = super::require("PATH").expect("PATH is set");
        assert_eq!(path, path.trim());
        assert!(!path.is_empty());
    }

    #[test]
    fn the_macro_gives_every_value_in_order() {
        let mut got = None;
        let mut run = || {
            let (a, b) = require_or_skip!("PATH", "HOME");
            got = Some((a, b));
        };
        run();
        let (path, home) = got.expect("PATH and HOME are set");
        assert_eq!(path, std::env::var("PATH").expect("PATH").trim());
        assert_eq!(home, std::env::var("HOME").expect("HOME").trim());
    }

    #[test]
    fn a_missing_variable_skips_locally_and_panics_in_ci() {
        let mut reached = false;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _value = require_or_skip!("KINFLUX_TESTKIT_NEVER_SET");
            reached = true;
        }));
        assert!(!reached, "the test went on without its variable");
        assert_eq!(outcome.is_err(), super::ci());
    }

    #[test]
    fn the_tansu_leg_is_opt_in_but_required_when_asked_for() {
        assert_eq!(
            super::tansu_rule(Some(" 127.0.0.1:9099 ".into()), false).as_deref(),
            Some("127.0.0.1:9099")
        );
        // Not asked for: skipped, even under CI.
        assert_eq!(super::tansu_rule(None, false), None);
        assert_eq!(super::tansu_rule(Some(" ".into()), false), None);
        // Asked for and missing: skipped locally, a failure under CI.
        let outcome = std::panic::catch_unwind(|| super::tansu_rule(None, true));
        assert_eq!(outcome.is_err(), super::ci());
    }
}
