//! `cairn 9p serve` against independent 9P implementations:
//! - the p9fs client (PyPI, on py9p) in both dialects, run as the same script against cairn and
//!   against diod exporting identical directories, answers compared (the differential test);
//! - diod's own tools (`diodls`, `diodcat`, `diodload`), 9P2000.L, C;
//! - the `ninep` crate's synchronous client, plain 9P2000, Rust.
//!
//! Every server, client and directory is made by the test and removed by a guard; loopback only.

mod ninep_common;

use std::process::Command;
use std::time::Duration;

use ninep_common::{repo_root, run_bounded, Peer, Server, TempDir};
use sha2::{Digest, Sha256};

/// Runs tests/python/test_p9fs.py against `server` and returns its JSON line.
fn p9fs_script(server: &Server, dialect: &str) -> serde_json::Value {
    let script = repo_root().join("cli/tests/python/test_p9fs.py");
    let out = run_bounded(
        Command::new("python3").arg(script).args([
            "127.0.0.1",
            &server.port.to_string(),
            dialect,
            &server.aname,
        ]),
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "p9fs script failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// What every server must answer to the script, whatever its dialect.
fn assert_script_succeeded(seen: &serde_json::Value, who: &str) {
    let expect = |key: &str, value: serde_json::Value| {
        assert_eq!(seen[key], value, "{who}: {key}");
    };
    expect("read_small", "hello, 9p\n".into());
    assert_eq!(seen["read_big_sha"], seen["big_sha_expected"], "{who}: the 3 MiB file read back");
    expect("isdir", true.into());
    expect("exists_old", false.into());
    expect("read_moved", "hello, 9p\n".into());
    expect("ls_many", 201.into());
    expect("read_many", true.into());
    expect("ls_end", serde_json::json!([]));
    for key in ["mkdir_again", "rm_missing", "cat_missing", "rmdir_nonempty"] {
        let answer = seen[key].as_str().unwrap_or_default();
        assert!(answer.starts_with("error"), "{who}: {key} must fail, got {answer:?}");
    }
}

#[test]
fn p9fs_sees_the_same_answers_from_cairn_and_diod() {
    let (cairn_dir, diod_dir) = (TempDir::new("p9fs-cairn"), TempDir::new("p9fs-diod"));
    let cairn = Server::start(Peer::Cairn, cairn_dir.path(), &[]);
    let diod = Server::start(Peer::Diod, diod_dir.path(), &[]);
    let from_cairn = p9fs_script(&cairn, "9P2000.L");
    let from_diod = p9fs_script(&diod, "9P2000.L");
    assert_script_succeeded(&from_diod, "diod");
    assert_script_succeeded(&from_cairn, "cairn");
    assert_eq!(from_cairn, from_diod, "cairn and diod answer p9fs differently");
}

#[test]
fn p9fs_speaks_plain_9p2000_to_cairn() {
    // diod speaks only 9P2000.L, so plain 9P2000 is checked against the expected answers.
    let dir = TempDir::new("p9fs-plain");
    let cairn = Server::start(Peer::Cairn, dir.path(), &[]);
    let mut seen = p9fs_script(&cairn, "9P2000");
    // p9fs recognises a missing file in 9P2000 only by py9p's own wording, "file not found";
    // Plan 9's (and cairn's) is "file does not exist", so `exists` raises instead of answering
    // false. That is p9fs's mistake: check the text and go on.
    assert_eq!(seen["exists_old"], "error: RpcError file does not exist");
    seen["exists_old"] = false.into();
    assert_script_succeeded(&seen, "cairn (9P2000)");
}

#[test]
fn diods_tools_list_read_and_load_cairn() {
    let dir = TempDir::new("diodtools");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/hello.txt"), b"hello from the host\n").unwrap();
    // A file over 64 MiB, checked by its digest after crossing 9P.
    let big: Vec<u8> =
        (0..(65 << 20) as u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    let cairn = Server::start(Peer::Cairn, dir.path(), &[]);
    let diod_args = |tool: &str| {
        let mut c = Command::new(tool);
        c.args(["-s", &cairn.addr(), "-a", &cairn.aname, "-t", "60"]);
        c
    };

    let out =
        run_bounded(diod_args("/usr/sbin/diodls").args(["-l", "/sub"]), Duration::from_secs(60));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "diodls: {}", String::from_utf8_lossy(&out.stderr));
    assert!(listing.contains("hello.txt") && listing.contains(" 20 "), "diodls -l: {listing}");

    let out =
        run_bounded(diod_args("/usr/sbin/diodcat").arg("/sub/hello.txt"), Duration::from_secs(60));
    assert_eq!(out.stdout, b"hello from the host\n", "diodcat");

    let out = run_bounded(diod_args("/usr/sbin/diodcat").arg("/big.bin"), Duration::from_secs(120));
    assert!(out.status.success(), "diodcat big: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), big.len(), "bytes of the 65 MiB file");
    assert_eq!(Sha256::digest(&out.stdout), Sha256::digest(&big), "the 65 MiB file's digest");

    // diodload attaches to "ctl" and reads zero / writes null there: cairn's dev/.
    let out = run_bounded(
        Command::new("/usr/sbin/diodload").args(["-s", &cairn.addr(), "-r", "2", "-n", "4"]),
        Duration::from_secs(60),
    );
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "diodload: {report}");
    let ops: f64 = report
        .split_whitespace()
        .zip(report.split_whitespace().skip(1))
        .find(|(_, unit)| unit.starts_with("ops/s"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no ops/s in {report:?}"));
    assert!(ops > 0.0 && !report.contains("error"), "diodload: {report}");
}

#[test]
fn the_ninep_crate_client_speaks_plain_9p2000_to_cairn() {
    use ninep::fs::{Mode, Perm};
    use ninep::sync::client::Client;

    let dir = TempDir::new("ninep-crate");
    std::fs::write(dir.path().join("existing.txt"), b"made by the host").unwrap();
    let cairn = Server::start(Peer::Cairn, dir.path(), &[]);
    let client = Client::new_tcp("root", cairn.addr(), "").expect("connect and attach");
    // The ninep client keeps one fid per path and opens it again for the next operation, which
    // 9P2000 forbids (Plan 9's lib9p answers "protocol botch", cairn "fid already open"), so the
    // test clunks each path's fid before using the path again.
    let file = "made-by-ninep.txt";
    let done = |path: &str| client.clunk_path(path).expect("clunk");

    assert_eq!(client.read_str("existing.txt").expect("read"), "made by the host");
    done("existing.txt");
    client.create("", file, Perm::OWNER_READ | Perm::OWNER_WRITE, Mode::WRITE).expect("create");
    done(file);
    assert_eq!(client.write(file, 0, b"written over 9P2000").expect("write"), 19);
    done(file);
    assert_eq!(std::fs::read(dir.path().join(file)).unwrap(), b"written over 9P2000");
    assert_eq!(client.read_from(file, 8, 4).expect("read at offset"), b"over");
    done(file);
    assert!(client.read_str("existing.txt").is_ok(), "a reopened path after clunk reads again");
    done("existing.txt");

    let stat = client.stat(file).expect("stat");
    assert_eq!((stat.name.as_str(), stat.n_bytes), (file, 19));
    done(file);
    let dir_perm = Perm::DIRECTORY | Perm::OWNER_READ | Perm::OWNER_WRITE | Perm::OWNER_EXEC;
    client.create("", "subdir", dir_perm, Mode::READ).expect("mkdir");
    done("subdir");
    assert!(dir.path().join("subdir").is_dir());
    client.remove("subdir").expect("remove a directory");
    assert!(!dir.path().join("subdir").exists());
    assert!(client.stat("subdir").is_err(), "removed directories are gone");
    // Last, because reading the root opens the client's root fid, and 9P2000 forbids walking
    // from an open fid (which this client would then do).
    let mut names: Vec<String> =
        client.read_dir("").expect("directory read").into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, ["existing.txt", file]);
}
