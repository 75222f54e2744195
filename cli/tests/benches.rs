//! Every benchmark runs end to end through the `cairn` binary in its quick form and ends with
//! the JSON line DESIGN.md asks for, with positive figures. (Timings themselves are never
//! asserted: these machines are shared and noisy.)

use std::process::Command;

fn quick_json(name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["bench", name, "--quick"])
        .output()
        .expect("run cairn bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cairn bench {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().last().expect("some output").to_string()
}

fn field(json: &str, name: &str) -> f64 {
    let key = format!("\"{name}\": ");
    let start = json.find(&key).unwrap_or_else(|| panic!("no {name} in {json}")) + key.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].trim().parse().unwrap_or_else(|_| panic!("{name} is not a number in {json}"))
}

#[test]
fn cache_bench_measures_both_servers() {
    let json = quick_json("cache");
    assert!(json.starts_with("{\"bench\": \"cache\""), "{json}");
    for name in ["cairn_rps", "memcached_rps", "ratio", "multiget_ratio"] {
        let v = field(&json, name);
        assert!(v.is_finite() && v > 0.0, "{name} = {v}");
    }
}

#[test]
fn runtime_benches_print_their_json_line() {
    for (name, fields) in [
        ("ebb", &["ebb_ns", "plain_ns", "ratio"][..]),
        ("spawn", &["cairn_ns", "std_ns", "ratio"][..]),
        ("alloc", &["cairn_s", "glibc_s", "mimalloc_s", "ratio"][..]),
    ] {
        let json = quick_json(name);
        assert!(json.starts_with(&format!("{{\"bench\": \"{name}\"")), "{json}");
        for f in fields {
            assert!(field(&json, f) > 0.0, "{name}: {f} in {json}");
        }
    }
}
