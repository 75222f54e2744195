//! Interop tests of the cache appliance with third-party clients and memcached's own suite.
//!
//! Each test runs against the real memcached (`NAME::memcached`, which proves the test) and
//! against `cairn cache` (`NAME::cairn`, ignored until the appliance lands); see
//! `cache_common` for the harness and the one line to delete to enable the cairn variants.
//!
//! - `memccapable_ascii`: libmemcached's conformance checker, ASCII protocol, passes in full;
//! - `pymemcache_suite`: `python/test_pymemcache.py` (every command through pymemcache, plus
//!   meta commands and pipelining on raw sockets) passes in full;
//! - `memcached_t_suite`: memcached's own `t/*.t` protocol tests, fetched at test time by
//!   `scripts/memcached-suite` (never committed), all pass.

mod cache_common;

use std::process::Command;
use std::time::Duration;

use cache_common::{against_each_target, repo_root, run_bounded, Server, Target};

against_each_target!(memccapable_ascii, pymemcache_suite, memcached_t_suite);

/// The ASCII tests `memccapable -a` runs (libmemcached-tools 1.1.4); each must say `[pass]`.
const MEMCCAPABLE_TESTS: usize = 27;

/// libmemcached's `memccapable -a` (version, quit, verbosity, set/get/gets/mget, flush, add,
/// replace, cas, delete, incr/decr, append/prepend, each with and without noreply, stat)
/// reports every test passed and exits 0.
fn memccapable_ascii(target: Target) {
    let server = Server::start(target);
    let port = server.port.to_string();
    let (code, out, err) = run_bounded(
        Command::new("memccapable").args(["-h", "127.0.0.1", "-p", &port, "-a", "-t", "10"]),
        Duration::from_secs(120),
    );
    let report = format!("exit {code:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(code, Some(0), "memccapable failed: {report}");
    let results: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| {
            let (name, verdict) = l.rsplit_once('[')?;
            Some((name.trim(), verdict.trim_end_matches(']')))
        })
        .collect();
    let passed = results.iter().filter(|(_, v)| *v == "pass").count();
    let not_passed: Vec<_> = results.iter().filter(|(_, v)| *v != "pass").collect();
    assert!(not_passed.is_empty(), "tests that did not pass: {not_passed:?}\n{report}");
    assert_eq!(passed, MEMCCAPABLE_TESTS, "{report}");
    assert!(out.contains("All tests passed"), "{report}");
}

/// The number of tests in `python/test_pymemcache.py`; all must pass.
const PYMEMCACHE_TESTS: usize = 23;

/// Every test of `python/test_pymemcache.py` passes (pymemcache must be importable:
/// `scripts/test` installs it).
fn pymemcache_suite(target: Target) {
    let server = Server::start(target);
    let script = repo_root().join("cli/tests/python/test_pymemcache.py");
    let (code, out, err) = run_bounded(
        Command::new("python3")
            .args(["-m", "unittest", "-v"])
            .arg(&script)
            .env("CACHE_TEST_PORT", server.port.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(script.parent().expect("python dir")),
        Duration::from_secs(180),
    );
    // unittest reports on stderr: "Ran N tests in ..." then "OK" or "FAILED (...)".
    let report = format!("exit {code:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(code, Some(0), "pymemcache tests failed: {report}");
    let ran = err
        .lines()
        .find_map(|l| l.strip_prefix("Ran ")?.split(' ').next()?.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no 'Ran N tests' line: {report}"));
    assert_eq!(ran, PYMEMCACHE_TESTS, "{report}");
    assert!(err.lines().any(|l| l == "OK"), "{report}");
}

/// The files of memcached 1.6.18's own suite that test the protocol through a running daemon,
/// as `scripts/memcached-suite` selects them (`--list` says why each other file is left out).
/// All pass against memcached; each must pass against cairn.
const T_SUITE_PASSES: [&str; 20] = [
    "bogus-commands.t",
    "cas.t",
    "chunked-items.t",
    "flags.t",
    "getandtouch.t",
    "getset.t",
    "incrdecr.t",
    "issue_104.t",
    "issue_108.t",
    "issue_152.t",
    "issue_192.t",
    "issue_3.t",
    "issue_68.t",
    "issue_70.t",
    "malicious-commands.t",
    "metaget.t",
    "multiversioning.t",
    "noreply.t",
    "quit.t",
    "touch.t",
];

/// Every selected file of memcached's own t/ suite passes (run by `scripts/memcached-suite`,
/// which fetches the suite with `apt-get source` on its first run, so that run needs the Debian
/// mirror; later runs use the copy under target/).
fn memcached_t_suite(target: Target) {
    let script = repo_root().join("scripts/memcached-suite");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).current_dir(repo_root());
    match target {
        Target::Memcached => cmd.arg("memcached"),
        Target::Cairn => cmd.arg("cairn").arg(cache_common::cairn_path()),
    };
    let (code, out, err) = run_bounded(&mut cmd, Duration::from_secs(900));
    let report = format!("exit {code:?}\nstdout:\n{out}\nstderr:\n{err}");
    let listed = |prefix: &str| -> Vec<String> {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.split_whitespace().map(str::to_string).collect())
            .unwrap_or_else(|| panic!("no '{prefix}' line: {report}"))
    };
    let expected = listed("selected:");
    let passed = listed("passed:");
    let failed = listed("failed:");
    assert_eq!(expected, T_SUITE_PASSES, "the script's selection changed: {report}");
    assert!(failed.is_empty(), "t/ files that failed: {failed:?}\n{report}");
    assert_eq!(passed, T_SUITE_PASSES, "{report}");
    assert_eq!(code, Some(0), "{report}");
}
