//! Tests of the text-protocol parser.
//!
//! Every expected reply below was observed on memcached 1.6.18 (`memcached -p PORT -U 0 -t 1`,
//! each input sent on a fresh connection with Python sockets); the comment above a check
//! quotes the input and what memcached answered. Where memcached's answer depends on its
//! store (`STORED`, `END`, `NOT_FOUND`, ...), the parser's part is a request, shown by
//! [`transcript`] as `<command>`.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

fn limits() -> Limits {
    Limits::default()
}

fn p(input: &[u8]) -> Parsed<'_> {
    parse(input, &limits())
}

/// The request `input` holds, all of it.
fn req(input: &[u8]) -> Request<'_> {
    match p(input) {
        Parsed::Request { request, consumed } => {
            assert_eq!(consumed, input.len(), "{:?}", String::from_utf8_lossy(input));
            request
        }
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

/// What memcached writes back for `input` sent in one piece, with requests (which the
/// executor answers) shown as `<name>`, a closed connection as `<close>` and bytes left
/// waiting for more as `<incomplete>`.
fn transcript(input: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = input;
    while !rest.is_empty() {
        match p(rest) {
            Parsed::Request { request, consumed } => {
                out.push_str(&format!("<{}>", name(&request)));
                rest = &rest[consumed..];
            }
            Parsed::Incomplete => {
                out.push_str("<incomplete>");
                break;
            }
            Parsed::Invalid { reply, consumed, swallow, close, unlink } => {
                if let Some(key) = unlink {
                    out.push_str(&format!("<unlink {}>", String::from_utf8_lossy(&key)));
                }
                out.push_str(core::str::from_utf8(reply).unwrap());
                rest = &rest[consumed..];
                rest = &rest[swallow.min(rest.len())..];
                if close {
                    out.push_str("<close>");
                    break;
                }
            }
        }
    }
    out
}

fn name(request: &Request<'_>) -> &'static str {
    match request {
        Request::Get { .. } => "get",
        Request::Store { .. } => "store",
        Request::Delete { .. } => "delete",
        Request::Arith { .. } => "arith",
        Request::Touch { .. } => "touch",
        Request::FlushAll { .. } => "flush_all",
        Request::Stats { .. } => "stats",
        Request::Version => "version",
        Request::Verbosity { .. } => "verbosity",
        Request::Quit => "quit",
        Request::MetaGet { .. } => "mg",
        Request::MetaSet { .. } => "ms",
        Request::MetaDelete { .. } => "md",
        Request::MetaArith { .. } => "ma",
        Request::MetaNoop => "mn",
        Request::MetaDebug { .. } => "me",
        Request::CacheMemlimit { .. } => "cache_memlimit",
    }
}

fn k(n: usize) -> Vec<u8> {
    vec![b'k'; n]
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn flags<'a>(list: &[(u8, &'a [u8])]) -> MetaFlags<'a> {
    MetaFlags { flags: list.iter().map(|&(flag, token)| MetaFlag { flag, token }).collect() }
}

// ---------------------------------------------------------------------------------------
// Lines, tokens, unknown commands.

#[test]
fn empty_and_unknown_lines() {
    // "\r\n" -> "ERROR\r\n"; "\n" -> "ERROR\r\n"; "foo\r\n" -> "ERROR\r\n"; "g\r\n" -> "ERROR\r\n"
    for input in [&b"\r\n"[..], b"\n", b"foo\r\n", b"g\r\n", b"  \r\n", b"\r\r\n"] {
        assert_eq!(transcript(input), "ERROR\r\n", "{input:?}");
    }
    // "GET a\r\n" -> "ERROR\r\n" (commands are case-sensitive); "getx a" -> "ERROR"
    assert_eq!(transcript(b"GET a\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"getx a\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"mx\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"m\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"mgx a\r\n"), "ERROR\r\n");
}

#[test]
fn http_requests_close_silently() {
    // "GET / HTTP/1.1\r\n" -> no reply, connection closed
    assert_eq!(transcript(b"GET / HTTP/1.1\r\n"), "<close>");
    // "foo HTTP/1.0\r\n" -> closed; "foo HTTP/1.0 x\r\n" -> "ERROR" (only the last token counts)
    assert_eq!(transcript(b"foo HTTP/1.0\r\n"), "<close>");
    assert_eq!(transcript(b"foo HTTP/1.0 x\r\n"), "ERROR\r\n");
    // "mfoo HTTP/1.1" -> closed; "x HTTP/1.1", "ge HTTP/1.1", "slabs HTTP/1.1" -> "ERROR"
    assert_eq!(transcript(b"mfoo HTTP/1.1\r\n"), "<close>");
    assert_eq!(transcript(b"x HTTP/1.1\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"ge HTTP/1.1\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"slabs HTTP/1.1\r\n"), "ERROR\r\n");
}

#[test]
fn unsupported_admin_commands() {
    // "shutdown\r\n" -> "ERROR: shutdown not enabled\r\n"; "slabs", "lru", "lru_crawler",
    // "extstore" -> "ERROR" (memcached: "ERROR" for these without arguments).
    assert_eq!(transcript(b"shutdown\r\n"), "ERROR: shutdown not enabled\r\n");
    for input in [&b"slabs\r\n"[..], b"lru\r\n", b"lru_crawler\r\n", b"extstore\r\n"] {
        assert_eq!(transcript(input), "ERROR\r\n");
    }
    // "misbehave\r\n" -> "ERROR\r\n" (a debug-build command)
    assert_eq!(transcript(b"misbehave\r\n"), "ERROR\r\n");
}

#[test]
fn line_endings_spaces_and_nul() {
    // "get a b c\n" -> "END" (bare newline accepted)
    assert_eq!(
        req(b"get a b c\n"),
        Request::Get { kind: GetKind::Get, exptime: None, keys: vec![b"a", b"b", b"c"] }
    );
    // "  get   a  \r\n" -> "END"
    assert_eq!(
        req(b"  get   a  \r\n"),
        Request::Get { kind: GetKind::Get, exptime: None, keys: vec![b"a"] }
    );
    // "get a\r\r\n" -> "END": one \r is dropped, the other is part of the key
    assert_eq!(
        req(b"get a\r\r\n"),
        Request::Get { kind: GetKind::Get, exptime: None, keys: vec![b"a\r"] }
    );
    // "get a\tb\r\n" -> "END": a tab is not a separator
    assert_eq!(
        req(b"get a\tb\r\n"),
        Request::Get { kind: GetKind::Get, exptime: None, keys: vec![b"a\tb"] }
    );
    // memcaslap's keys start with eight 0x10 bytes; memcached stores them.
    assert!(matches!(
        req(b"set \x10\x10\x10\x10\x10\x10\x10\x10NX2c-PBIq 0 0 1\r\nx\r\n"),
        Request::Store { .. }
    ));
    // "get a\0b\r\n" -> "END", "get a\0 b" -> "END": the line ends at a NUL
    assert_eq!(
        req(b"get a\0b\r\n"),
        Request::Get { kind: GetKind::Get, exptime: None, keys: vec![b"a"] }
    );
    // "set a\0 0 0 1\r\nx\r\n" -> "ERROR\r\nERROR\r\n"
    assert_eq!(transcript(b"set a\0 0 0 1\r\nx\r\n"), "ERROR\r\nERROR\r\n");
    // "get a\r\n\r\nget b\n" -> "END\r\nERROR\r\nEND\r\n"
    assert_eq!(transcript(b"get a\r\n\r\nget b\n"), "<get>ERROR\r\n<get>");
}

#[test]
fn incomplete_lines() {
    assert_eq!(p(b""), Parsed::Incomplete);
    assert_eq!(p(b"get a"), Parsed::Incomplete);
    assert_eq!(p(b"get a\r"), Parsed::Incomplete);
    // 2048 bytes without a newline: memcached keeps waiting.
    assert_eq!(p(&[b'x'; 2048]), Parsed::Incomplete);
}

#[test]
fn long_lines_close() {
    // 2049 or 3000 bytes without a newline -> no reply, connection closed (no "line too long").
    for n in [2049, 3000] {
        let input = vec![b'x'; n];
        assert_eq!(
            p(&input),
            Parsed::Invalid { reply: b"", consumed: n, swallow: 0, close: true, unlink: None }
        );
    }
    // "gat k k k ..." (3000 bytes, no newline) -> closed: only get/gets may be long.
    let gat = cat(&[b"gat ", &b"k ".repeat(1500)]);
    assert!(matches!(p(&gat), Parsed::Invalid { close: true, .. }));
    // "get k k ..." / "gets k k ..." (3000+ bytes, no newline) -> still waiting.
    assert_eq!(p(&cat(&[b"get ", &b"k ".repeat(1500)])), Parsed::Incomplete);
    assert_eq!(p(&cat(&[b"gets ", &b"k ".repeat(1500)])), Parsed::Incomplete);
    // 100 leading spaces then "get ..." -> waiting; 101 -> closed.
    assert_eq!(p(&cat(&[&[b' '; 100], b"get ", &b"k ".repeat(1500)])), Parsed::Incomplete);
    let spaced = cat(&[&[b' '; 101], b"get ", &b"k ".repeat(1500)]);
    assert!(matches!(p(&spaced), Parsed::Invalid { close: true, .. }));
    // "get k k ... k\r\n" (3000 bytes) -> "END"
    let long_get = cat(&[b"get ", &b"k ".repeat(1500), b"\r\n"]);
    match req(&long_get) {
        Request::Get { keys, .. } => assert_eq!(keys.len(), 1500),
        other => panic!("{other:?}"),
    }
    // A get line past Limits::max_get_line without a newline is closed (memcached: no bound).
    let small = Limits { max_get_line: 4096, ..Limits::default() };
    let huge = cat(&[b"get ", &b"k ".repeat(3000)]);
    assert!(matches!(parse(&huge, &small), Parsed::Invalid { close: true, .. }));
    // "set a 0 0 1 <3000 x>\r\nx\r\n" sent at once -> "STORED": a long line that has its
    // newline is read (the extra token is not "noreply", so it is ignored).
    let long_set = cat(&[b"set a 0 0 1 ", &[b'x'; 3000], b"\r\nx\r\n"]);
    assert!(matches!(req(&long_set), Request::Store { noreply: false, data: b"x", .. }));
}

// ---------------------------------------------------------------------------------------
// Retrieval.

#[test]
fn get_forms() {
    assert_eq!(
        req(b"get a\r\n"),
        Request::Get { kind: GetKind::Get, exptime: None, keys: vec![b"a"] }
    );
    assert_eq!(
        req(b"gets a b\r\n"),
        Request::Get { kind: GetKind::Gets, exptime: None, keys: vec![b"a", b"b"] }
    );
    // "bget a\r\n" -> "END" (memcached's ancient alias of get)
    assert_eq!(
        req(b"bget a\r\n"),
        Request::Get { kind: GetKind::Get, exptime: None, keys: vec![b"a"] }
    );
    // "gats 10 a b\r\n" -> "END"
    assert_eq!(
        req(b"gats 10 a b\r\n"),
        Request::Get { kind: GetKind::Gats, exptime: Some(10), keys: vec![b"a", b"b"] }
    );
    // "gat -1 a\r\n" -> "VALUE a 0 1\r\nx\r\nEND\r\n"
    assert_eq!(
        req(b"gat -1 a\r\n"),
        Request::Get { kind: GetKind::Gat, exptime: Some(-1), keys: vec![b"a"] }
    );
    // "gat 10\r\n" -> "END\r\n": no keys at all
    assert_eq!(
        req(b"gat 10\r\n"),
        Request::Get { kind: GetKind::Gat, exptime: Some(10), keys: vec![] }
    );
    // "gat 99999999999 a\r\n" -> "END": the time keeps its low 32 bits
    assert_eq!(
        req(b"gat 99999999999 a\r\n"),
        Request::Get {
            kind: GetKind::Gat,
            exptime: Some(i64::from(99999999999i64 as i32)),
            keys: vec![b"a"]
        }
    );
    // 25 keys -> 25 VALUEs (past memcached's 24-token tokenizer window)
    match req(&cat(&[b"get", &b" a".repeat(25), b"\r\n"])) {
        Request::Get { keys, .. } => assert_eq!(keys.len(), 25),
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_errors() {
    // "get\r\n", "get \r\n", "gets\r\n", "gat\r\n" -> "ERROR\r\n"
    for input in [&b"get\r\n"[..], b"get \r\n", b"gets\r\n", b"gat\r\n"] {
        assert_eq!(transcript(input), "ERROR\r\n");
    }
    // "get <250 k>" -> "END"; "get <251 k>" -> "CLIENT_ERROR bad command line format"
    assert!(matches!(req(&cat(&[b"get ", &k(250), b"\r\n"])), Request::Get { .. }));
    assert_eq!(
        transcript(&cat(&[b"get ", &k(251), b"\r\n"])),
        "CLIENT_ERROR bad command line format\r\n"
    );
    // "get a b <251 k>" (a stored) -> only "CLIENT_ERROR bad command line format": no VALUE
    // for the good keys, so the whole request is refused.
    assert_eq!(
        transcript(&cat(&[b"get a b ", &k(251), b"\r\n"])),
        "CLIENT_ERROR bad command line format\r\n"
    );
    // Same with the long key past the first 24 tokens.
    assert_eq!(
        transcript(&cat(&[b"get ", &b"a ".repeat(25), &k(251), b"\r\n"])),
        "CLIENT_ERROR bad command line format\r\n"
    );
    // "gat x a" -> "CLIENT_ERROR invalid exptime argument"
    assert_eq!(transcript(b"gat x a\r\n"), "CLIENT_ERROR invalid exptime argument\r\n");
    // "gat 10 <251 k>" -> "CLIENT_ERROR bad command line format"
    assert_eq!(
        transcript(&cat(&[b"gat 10 ", &k(251), b"\r\n"])),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

// ---------------------------------------------------------------------------------------
// Storage.

#[test]
fn store_forms() {
    assert_eq!(
        req(b"set a 5 10 3\r\nabc\r\n"),
        Request::Store {
            kind: StoreKind::Set,
            key: b"a",
            flags: 5,
            exptime: 10,
            cas: 0,
            noreply: false,
            data: b"abc"
        }
    );
    for (word, kind) in [
        ("add", StoreKind::Add),
        ("replace", StoreKind::Replace),
        ("append", StoreKind::Append),
        ("prepend", StoreKind::Prepend),
    ] {
        let input = format!("{word} k 0 0 2 noreply\r\nhi\r\n");
        assert_eq!(
            req(input.as_bytes()),
            Request::Store {
                kind,
                key: b"k",
                flags: 0,
                exptime: 0,
                cas: 0,
                noreply: true,
                data: b"hi"
            }
        );
    }
    // "cas a 0 0 1 5\r\nx\r\n" -> "EXISTS"; with noreply -> nothing
    assert_eq!(
        req(b"cas a 0 0 1 5 noreply\r\nx\r\n"),
        Request::Store {
            kind: StoreKind::Cas,
            key: b"a",
            flags: 0,
            exptime: 0,
            cas: 5,
            noreply: true,
            data: b"x"
        }
    );
    // Data may hold anything, "\r\n" included.
    assert!(matches!(
        req(b"set a 0 0 4\r\n\r\n\r\n\r\n"),
        Request::Store { data: b"\r\n\r\n", .. }
    ));
    // "set a 0 0 0\r\n\r\n" -> empty value
    assert!(matches!(req(b"set a 0 0 0\r\n\r\n"), Request::Store { data: b"", .. }));
    // "set a 0 0 1 foo\r\nx\r\n" -> "STORED": a last token other than noreply is ignored
    assert!(matches!(req(b"set a 0 0 1 foo\r\nx\r\n"), Request::Store { noreply: false, .. }));
}

#[test]
fn store_numbers_as_memcached_reads_them() {
    let store = |input: &'static [u8]| match req(input) {
        Request::Store { flags, exptime, data, .. } => (flags, exptime, data.len()),
        other => panic!("{other:?}"),
    };
    // "set a 4294967296 0 1 ... gets a" -> "VALUE a 0 1 5": flags keep their low 32 bits
    assert_eq!(store(b"set a 4294967296 0 1\r\nx\r\n"), (0, 0, 1));
    // "set a 4294967297 0 1 ... get a" -> "VALUE a 1 1"
    assert_eq!(store(b"set a 4294967297 0 1\r\nx\r\n"), (1, 0, 1));
    // "set a 0 0 4294967297\r\nx\r\n" -> "STORED" (length 1)
    assert_eq!(store(b"set a 0 0 4294967297\r\nx\r\n"), (0, 0, 1));
    // "set a 0 4294967296 1" -> stored, never expires (exptime 0)
    assert_eq!(store(b"set a 0 4294967296 1\r\nx\r\n"), (0, 0, 1));
    // "set a 0 -1 1" -> "STORED", then get misses (expired)
    assert_eq!(store(b"set a 0 -1 1\r\nx\r\n"), (0, -1, 1));
    // "set a +5 0 1" -> "VALUE a 5 1"; "set a 0 0 01" -> "STORED"
    assert_eq!(store(b"set a +5 0 1\r\nx\r\n"), (5, 0, 1));
    assert_eq!(store(b"set a 0 0 01\r\nx\r\n"), (0, 0, 1));
    // A tab after the digits ends the number (strtoul stops at C white space).
    assert_eq!(store(b"set a 7\t 0 1\r\nx\r\n"), (7, 0, 1));
}

#[test]
fn store_errors() {
    let bad = "CLIENT_ERROR bad command line format\r\n";
    // "set a 0 0\r\n" -> "ERROR"; "set a 0 0 1 noreply x\r\n" -> "ERROR"
    assert_eq!(transcript(b"set a 0 0\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"set a 0 0 1 noreply x\r\n"), "ERROR\r\n");
    // "cas a 0 0 1\r\nx\r\n" -> "ERROR\r\nERROR\r\n" (the data line is read as a command)
    assert_eq!(transcript(b"cas a 0 0 1\r\nx\r\n"), "ERROR\r\nERROR\r\n");
    // "set a x 0 1\r\nx\r\n", "set a 0 x 1", "set a 0 0 x", "set a 0 0 -1", "set a -1 0 1",
    // "set a 5x 0 1" -> "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    for input in [
        &b"set a x 0 1\r\nx\r\n"[..],
        b"set a 0 x 1\r\nx\r\n",
        b"set a 0 0 x\r\nx\r\n",
        b"set a 0 0 -1\r\nx\r\n",
        b"set a -1 0 1\r\nx\r\n",
        b"set a 5x 0 1\r\nx\r\n",
        b"cas a 0 0 1 x\r\nx\r\n",
        b"cas a 0 0 1 -1\r\nx\r\n",
    ] {
        assert_eq!(transcript(input), format!("{bad}ERROR\r\n"), "{input:?}");
    }
    // "set <251 k> 0 0 1\r\nx\r\n" -> "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    assert_eq!(
        transcript(&cat(&[b"set ", &k(251), b" 0 0 1\r\nx\r\n"])),
        format!("{bad}ERROR\r\n")
    );
    // "set a 0 0 2147483648\r\n", "set a 0 0 2147483646\r\n" -> bad command line format
    assert_eq!(transcript(b"set a 0 0 2147483648\r\n"), bad);
    assert_eq!(transcript(b"set a 0 0 2147483646\r\n"), bad);
}

#[test]
fn noreply_silences_store_errors() {
    // "set a 0 0 1 noreply\r\nx\r\n" -> nothing
    assert!(matches!(req(b"set a 0 0 1 noreply\r\nx\r\n"), Request::Store { noreply: true, .. }));
    // "set a 0 0 noreply\r\n" -> nothing (the length "noreply" is bad, and silenced)
    assert_eq!(transcript(b"set a 0 0 noreply\r\n"), "");
    // "set a x 0 1 noreply\r\nx\r\n" -> "ERROR\r\n" (only the data line's)
    assert_eq!(transcript(b"set a x 0 1 noreply\r\nx\r\n"), "ERROR\r\n");
    // "set <251 k> 0 0 1 noreply\r\nx\r\n" -> "ERROR\r\n"
    assert_eq!(transcript(&cat(&[b"set ", &k(251), b" 0 0 1 noreply\r\nx\r\n"])), "ERROR\r\n");
    // "set a 0 0 1 noreply\r\nxyz\r\n" -> "ERROR\r\n" (bad data chunk silenced, "\r\n" left)
    assert_eq!(transcript(b"set a 0 0 1 noreply\r\nxyz\r\n"), "ERROR\r\n");
}

#[test]
fn bad_data_chunk() {
    // "set a 0 0 1\r\nxy\r\n" -> "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    assert_eq!(transcript(b"set a 0 0 1\r\nxy\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    // "set a 0 0 1\r\nxyz\r\nget a\r\n" -> "CLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE ..."
    assert_eq!(
        transcript(b"set a 0 0 1\r\nxyz\r\nget a\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n<get>"
    );
    // "set a 0 0 3\r\nabcde\r\nget a\r\n" -> same: memcached drops the 3 bytes and the two
    // after them ("de"), then reads "\r\n" as an empty command.
    assert_eq!(
        p(b"set a 0 0 3\r\nabcde\r\nget a\r\n"),
        Parsed::Invalid {
            reply: reply::BAD_DATA_CHUNK,
            consumed: 18,
            swallow: 0,
            close: false,
            unlink: None
        }
    );
    // "set a 0 0 1\r\nx\nget a\r\n" -> "CLIENT_ERROR bad data chunk\r\nERROR\r\n" (the data
    // must end in "\r\n"; "et a\r\n" is then an unknown command)
    assert_eq!(
        transcript(b"set a 0 0 1\r\nx\nget a\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    );
    // "set a 0 0 1\r\nx\n" -> no answer yet (memcached waits for the second byte)
    assert_eq!(p(b"set a 0 0 1\r\nx\n"), Parsed::Incomplete);
}

#[test]
fn data_block_waits() {
    assert_eq!(p(b"set a 0 0 5\r\n"), Parsed::Incomplete);
    assert_eq!(p(b"set a 0 0 5\r\nabc"), Parsed::Incomplete);
    assert_eq!(p(b"set a 0 0 5\r\nabcde"), Parsed::Incomplete);
    assert_eq!(p(b"set a 0 0 5\r\nabcde\r"), Parsed::Incomplete);
    assert!(matches!(p(b"set a 0 0 5\r\nabcde\r\nget"), Parsed::Request { consumed: 20, .. }));
}

#[test]
fn too_large() {
    // "set a 0 0 1048516" + data -> "STORED"; 1048517 -> "SERVER_ERROR object too large for
    // cache"; with flags 5 the bound is 1048512; with a 10-byte key 1048507.
    assert!(limits().item_fits(1, 0, 1048516));
    assert!(!limits().item_fits(1, 0, 1048517));
    assert!(limits().item_fits(1, 5, 1048512));
    assert!(!limits().item_fits(1, 5, 1048513));
    assert!(limits().item_fits(10, 0, 1048507));
    assert!(!limits().item_fits(10, 0, 1048508));
    // "set a 0 0 2000000\r\n" + 2000000 bytes + "ABget b\r\n" -> "SERVER_ERROR object too
    // large for cache\r\nEND\r\n": the line, then exactly 2000002 bytes are swallowed, whatever
    // they are. memcached also deletes the old "a" (set u; set u <too large>; get u -> END).
    assert_eq!(
        p(b"set a 0 0 2000000\r\n"),
        Parsed::Invalid {
            reply: reply::TOO_LARGE,
            consumed: 19,
            swallow: 2000002,
            close: false,
            unlink: Some(Cow::Borrowed(b"a"))
        }
    );
    // add/replace/append/cas refused as too large keep the old value (get u -> VALUE u).
    for word in ["add", "replace", "append", "prepend"] {
        let line = format!("{word} u 0 0 2000000\r\n");
        assert!(matches!(
            p(line.as_bytes()),
            Parsed::Invalid { reply: reply::TOO_LARGE, swallow: 2000002, unlink: None, .. }
        ));
    }
    assert!(matches!(
        p(b"cas u 0 0 2000000 1\r\n"),
        Parsed::Invalid { reply: reply::TOO_LARGE, swallow: 2000002, unlink: None, .. }
    ));
    // "set u 0 0 2000000 noreply" + data + "get u" -> "END" only: silenced, still unlinked.
    assert_eq!(
        p(b"set u 0 0 2000000 noreply\r\n"),
        Parsed::Invalid {
            reply: b"",
            consumed: 27,
            swallow: 2000002,
            close: false,
            unlink: Some(Cow::Borrowed(b"u"))
        }
    );
    // "set a 0 0 2147483645\r\n" -> (silence while memcached swallows 2 GB): never buffered.
    assert!(matches!(
        p(b"set a 0 0 2147483645\r\n"),
        Parsed::Invalid { reply: reply::TOO_LARGE, swallow: 2147483647, .. }
    ));
}

// ---------------------------------------------------------------------------------------
// delete, incr/decr, touch.

#[test]
fn delete_forms_and_errors() {
    // "delete a" / "delete a 0" -> "NOT_FOUND"; "delete a noreply" / "delete a 0 noreply" -> nothing
    assert_eq!(req(b"delete a\r\n"), Request::Delete { key: b"a", noreply: false });
    assert_eq!(req(b"delete a 0\r\n"), Request::Delete { key: b"a", noreply: false });
    assert_eq!(req(b"delete a noreply\r\n"), Request::Delete { key: b"a", noreply: true });
    assert_eq!(req(b"delete a 0 noreply\r\n"), Request::Delete { key: b"a", noreply: true });
    // "delete a 5", "delete a 0 foo", "delete a foo" -> the usage error
    let usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    for input in [&b"delete a 5\r\n"[..], b"delete a 0 foo\r\n", b"delete a foo\r\n"] {
        assert_eq!(transcript(input), usage);
    }
    // "delete a 5 noreply" -> nothing
    assert_eq!(transcript(b"delete a 5 noreply\r\n"), "");
    // "delete" -> "ERROR"; "delete a 0 noreply x" -> "ERROR"
    assert_eq!(transcript(b"delete\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"delete a 0 noreply x\r\n"), "ERROR\r\n");
    // "delete <251 k>" -> bad command line format; with noreply -> nothing
    assert_eq!(
        transcript(&cat(&[b"delete ", &k(251), b"\r\n"])),
        "CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(transcript(&cat(&[b"delete ", &k(251), b" noreply\r\n"])), "");
}

#[test]
fn arith_forms_and_errors() {
    assert_eq!(
        req(b"incr a 1\r\n"),
        Request::Arith { incr: true, key: b"a", delta: 1, noreply: false }
    );
    assert_eq!(
        req(b"decr a 1\r\n"),
        Request::Arith { incr: false, key: b"a", delta: 1, noreply: false }
    );
    // "incr a 1 noreply" -> nothing; "incr a 1 foo" -> "NOT_FOUND"; "incr a +1" -> "NOT_FOUND"
    assert_eq!(
        req(b"incr a 1 noreply\r\n"),
        Request::Arith { incr: true, key: b"a", delta: 1, noreply: true }
    );
    assert_eq!(
        req(b"incr a 1 foo\r\n"),
        Request::Arith { incr: true, key: b"a", delta: 1, noreply: false }
    );
    assert_eq!(
        req(b"incr a +1\r\n"),
        Request::Arith { incr: true, key: b"a", delta: 1, noreply: false }
    );
    // "set n 0 0 1\r\n5\r\nincr n 18446744073709551615\r\n" -> "STORED\r\n4\r\n"
    assert!(matches!(
        req(b"incr n 18446744073709551615\r\n"),
        Request::Arith { delta: u64::MAX, .. }
    ));
    // "incr n 18446744073709551616", "incr a x", "incr a -1", "incr a 1x" -> invalid delta
    for input in [
        &b"incr n 18446744073709551616\r\n"[..],
        b"incr a x\r\n",
        b"incr a -1\r\n",
        b"incr a 1x\r\n",
    ] {
        assert_eq!(transcript(input), "CLIENT_ERROR invalid numeric delta argument\r\n");
    }
    // "incr a x noreply" -> nothing; "incr a" -> "ERROR"; "incr a 1 noreply x" -> "ERROR"
    assert_eq!(transcript(b"incr a x noreply\r\n"), "");
    assert_eq!(transcript(b"incr a\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"incr a 1 noreply x\r\n"), "ERROR\r\n");
    // "incr <251 k> 1" -> bad command line format
    assert_eq!(
        transcript(&cat(&[b"incr ", &k(251), b" 1\r\n"])),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn touch_forms_and_errors() {
    assert_eq!(req(b"touch a 10\r\n"), Request::Touch { key: b"a", exptime: 10, noreply: false });
    assert_eq!(
        req(b"touch a 10 noreply\r\n"),
        Request::Touch { key: b"a", exptime: 10, noreply: true }
    );
    // "touch a 10 foo" -> "NOT_FOUND"
    assert_eq!(
        req(b"touch a 10 foo\r\n"),
        Request::Touch { key: b"a", exptime: 10, noreply: false }
    );
    // "touch a" -> "ERROR"; "touch a x" -> invalid exptime; with noreply -> nothing
    assert_eq!(transcript(b"touch a\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"touch a x\r\n"), "CLIENT_ERROR invalid exptime argument\r\n");
    assert_eq!(transcript(b"touch a x noreply\r\n"), "");
    assert_eq!(
        transcript(&cat(&[b"touch ", &k(251), b" 10\r\n"])),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

// ---------------------------------------------------------------------------------------
// flush_all, version, verbosity, quit, stats, cache_memlimit.

#[test]
fn flush_all_forms_and_errors() {
    // "flush_all", "flush_all 0", "flush_all 10", "flush_all -1", "flush_all 10 foo" -> "OK"
    assert_eq!(req(b"flush_all\r\n"), Request::FlushAll { delay: 0, noreply: false });
    assert_eq!(req(b"flush_all 0\r\n"), Request::FlushAll { delay: 0, noreply: false });
    assert_eq!(req(b"flush_all 10\r\n"), Request::FlushAll { delay: 10, noreply: false });
    assert_eq!(req(b"flush_all -1\r\n"), Request::FlushAll { delay: -1, noreply: false });
    assert_eq!(req(b"flush_all 10 foo\r\n"), Request::FlushAll { delay: 10, noreply: false });
    // "flush_all noreply", "flush_all 10 noreply" -> nothing
    assert_eq!(req(b"flush_all noreply\r\n"), Request::FlushAll { delay: 0, noreply: true });
    assert_eq!(req(b"flush_all 10 noreply\r\n"), Request::FlushAll { delay: 10, noreply: true });
    // "flush_all x" -> invalid exptime; "flush_all x noreply" -> nothing; "flush_all 1 2 3" -> ERROR
    assert_eq!(transcript(b"flush_all x\r\n"), "CLIENT_ERROR invalid exptime argument\r\n");
    assert_eq!(transcript(b"flush_all x noreply\r\n"), "");
    assert_eq!(transcript(b"flush_all 1 2 3\r\n"), "ERROR\r\n");
}

#[test]
fn version_quit_verbosity_stats_memlimit() {
    // "version", "version x y" -> "VERSION 1.6.18"
    assert_eq!(req(b"version\r\n"), Request::Version);
    assert_eq!(req(b"version x y\r\n"), Request::Version);
    // "quit\r\nget a\r\n" -> connection closed; "quit x" -> closed
    assert!(matches!(
        p(b"quit\r\nget a\r\n"),
        Parsed::Request { request: Request::Quit, consumed: 6 }
    ));
    assert_eq!(req(b"quit x\r\n"), Request::Quit);
    // "verbosity 1" -> "OK"; "verbosity 1 2" -> "OK"; "verbosity 1 noreply" -> nothing
    assert_eq!(req(b"verbosity 1\r\n"), Request::Verbosity { level: 1, noreply: false });
    assert_eq!(req(b"verbosity 1 2\r\n"), Request::Verbosity { level: 1, noreply: false });
    assert_eq!(req(b"verbosity 1 noreply\r\n"), Request::Verbosity { level: 1, noreply: true });
    // "verbosity" / "verbosity 1 2 3" -> "ERROR"; "verbosity x" -> bad format; "verbosity noreply" -> nothing
    assert_eq!(transcript(b"verbosity\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"verbosity 1 2 3\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"verbosity x\r\n"), "CLIENT_ERROR bad command line format\r\n");
    assert_eq!(transcript(b"verbosity noreply\r\n"), "");
    // "stats" -> the general stats; "stats reset" -> "RESET"; "stats foo" -> "ERROR" (executor)
    assert_eq!(req(b"stats\r\n"), Request::Stats { args: vec![] });
    assert_eq!(req(b"stats reset\r\n"), Request::Stats { args: vec![b"reset"] });
    assert_eq!(req(b"stats detail on\r\n"), Request::Stats { args: vec![b"detail", b"on"] });
    // "cache_memlimit 100" -> "OK"; "cache_memlimit 0" -> "MEMLIMIT_TOO_SMALL ..." (executor)
    assert_eq!(
        req(b"cache_memlimit 100\r\n"),
        Request::CacheMemlimit { megabytes: 100, noreply: false }
    );
    assert_eq!(
        req(b"cache_memlimit 0\r\n"),
        Request::CacheMemlimit { megabytes: 0, noreply: false }
    );
    assert_eq!(
        req(b"cache_memlimit 100 noreply\r\n"),
        Request::CacheMemlimit { megabytes: 100, noreply: true }
    );
    // "cache_memlimit", "cache_memlimit x", "cache_memlimit -5", "cache_memlimit 1 2 3" -> "ERROR"
    for input in [
        &b"cache_memlimit\r\n"[..],
        b"cache_memlimit x\r\n",
        b"cache_memlimit -5\r\n",
        b"cache_memlimit 1 2 3\r\n",
    ] {
        assert_eq!(transcript(input), "ERROR\r\n");
    }
    assert_eq!(transcript(b"cache_memlimit noreply\r\n"), "");
}

// ---------------------------------------------------------------------------------------
// Meta commands.

#[test]
fn meta_noop_and_debug() {
    // "mn" / "mn x y" -> "MN"
    assert_eq!(req(b"mn\r\n"), Request::MetaNoop);
    assert_eq!(req(b"mn x y\r\n"), Request::MetaNoop);
    // "me a" -> "ME a exp=..."; "me a x y z" -> the same
    assert_eq!(
        req(b"me a\r\n"),
        Request::MetaDebug { key: Cow::Borrowed(b"a"), flags: flags(&[]) }
    );
    assert_eq!(
        req(b"me a x y z\r\n"),
        Request::MetaDebug { key: Cow::Borrowed(b"a"), flags: flags(&[]) }
    );
    // "me YQ== b" -> "ME a exp=..."
    assert_eq!(
        req(b"me YQ== b\r\n"),
        Request::MetaDebug { key: Cow::Owned(b"a".to_vec()), flags: flags(&[(b'b', b"")]) }
    );
    // "me !!!! bx" -> "EN": only a lone "b" asks for base64
    assert_eq!(
        req(b"me !!!! bx\r\n"),
        Request::MetaDebug { key: Cow::Borrowed(b"!!!!"), flags: flags(&[]) }
    );
    // "me", "me a b" (not base64), "me !!!! b", "me <251 k>" -> bad command line format
    let bad = "CLIENT_ERROR bad command line format\r\n";
    for input in [&b"me\r\n"[..], b"me a b\r\n", b"me !!!! b\r\n"] {
        assert_eq!(transcript(input), bad);
    }
    assert_eq!(transcript(&cat(&[b"me ", &k(251), b"\r\n"])), bad);
}

#[test]
fn meta_get_forms() {
    // "mg a" -> "EN"; "mg a v" -> "EN"; "mg a k v s" -> "EN ka"; "mg a vv" -> "EN"
    assert_eq!(req(b"mg a\r\n"), Request::MetaGet { key: Cow::Borrowed(b"a"), flags: flags(&[]) });
    assert_eq!(
        req(b"mg a k v s T10 Oabc\r\n"),
        Request::MetaGet {
            key: Cow::Borrowed(b"a"),
            flags: flags(&[(b'k', b""), (b'v', b""), (b's', b""), (b'T', b"10"), (b'O', b"abc")])
        }
    );
    assert_eq!(
        req(b"mg a vv\r\n"),
        Request::MetaGet { key: Cow::Borrowed(b"a"), flags: flags(&[(b'v', b"v")]) }
    );
    // "mg a C5", "mg a F5", "mg a MS" -> "EN" (flags of other commands are accepted)
    for input in [&b"mg a C5\r\n"[..], b"mg a F5\r\n", b"mg a MS\r\n", b"mg a MX\r\n"] {
        assert!(matches!(req(input), Request::MetaGet { .. }));
    }
    // "mg a O<31>" -> "EN O<31>"
    assert!(matches!(req(&cat(&[b"mg a O", &[b'x'; 31], b"\r\n"])), Request::MetaGet { .. }));
    // "mg <250 k> v" -> "EN"
    assert!(matches!(req(&cat(&[b"mg ", &k(250), b" v\r\n"])), Request::MetaGet { .. }));
    // 17 flags: processed (memcached then found "E" invalid: "CLIENT_ERROR invalid flag")
    assert_eq!(
        transcript(b"mg a c f h k l O P L q s t u v I E\r\n"),
        "CLIENT_ERROR invalid flag\r\n"
    );
    assert_eq!(transcript(b"mg a c f h k l O P L q s t u v I D1 C2\r\n"), "<mg>");
}

#[test]
fn meta_get_errors() {
    let cases: &[(&[u8], &str)] = &[
        // "mg" -> "ERROR"
        (b"mg\r\n", "ERROR\r\n"),
        // "mg a v v" -> duplicate; "mg a \x80" -> duplicate (memcached's test for bytes > 126)
        (b"mg a v v\r\n", "CLIENT_ERROR duplicate flag\r\n"),
        (b"mg a \x80\r\n", "CLIENT_ERROR duplicate flag\r\n"),
        // "mg a z", "mg a !", "mg a E5", "mg a x" -> invalid flag
        (b"mg a z\r\n", "CLIENT_ERROR invalid flag\r\n"),
        (b"mg a !\r\n", "CLIENT_ERROR invalid flag\r\n"),
        (b"mg a E5\r\n", "CLIENT_ERROR invalid flag\r\n"),
        // "mg a T", "mg a Tx", "mg a N", "mg a R5x", "mg a Cx" -> bad token
        (b"mg a T\r\n", "CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg a Tx\r\n", "CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg a N\r\n", "CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg a R5x\r\n", "CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg a Cx\r\n", "CLIENT_ERROR bad token in command line format\r\n"),
        // "mg a Tx q" -> bad token, despite q
        (b"mg a Tx q\r\n", "CLIENT_ERROR bad token in command line format\r\n"),
        // "mg a Fx" -> bad command line format (F has no message of its own)
        (b"mg a Fx\r\n", "CLIENT_ERROR bad command line format\r\n"),
        // "mg a M", "mg a MSS" -> incorrect length for M token
        (b"mg a M\r\n", "CLIENT_ERROR incorrect length for M token\r\n"),
        (b"mg a MSS\r\n", "CLIENT_ERROR incorrect length for M token\r\n"),
        // "mg a Jx" -> invalid numeric initial value; "mg a Dx" -> invalid numeric delta value
        (b"mg a Jx\r\n", "CLIENT_ERROR invalid numeric initial value\r\n"),
        (b"mg a Dx\r\n", "CLIENT_ERROR invalid numeric delta value\r\n"),
        // 18 and 19 flags -> "CLIENT_ERROR options flags are too long"
        (
            b"mg a c f h k l O P L q s t u v I E j x y\r\n",
            "CLIENT_ERROR options flags are too long\r\n",
        ),
        (
            b"mg a c f h k l O P L q s t u v I E j x y z\r\n",
            "CLIENT_ERROR options flags are too long\r\n",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(transcript(input), *expected, "{:?}", String::from_utf8_lossy(input));
    }
    // "mg a O<32>" and "mg a q O<32>" -> opaque token too long
    let opaque = cat(&[b"mg a q O", &[b'x'; 32], b"\r\n"]);
    assert_eq!(transcript(&opaque), "CLIENT_ERROR opaque token too long\r\n");
    // "mg <251 k> v" and "mg <251 k> q" -> bad command line format
    assert_eq!(
        transcript(&cat(&[b"mg ", &k(251), b" q\r\n"])),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn meta_base64_keys() {
    // "mg YQ== b v" -> "EN"; "mg YWJj b k v" -> "EN kYWJj b"
    assert_eq!(
        req(b"mg YQ== b v\r\n"),
        Request::MetaGet {
            key: Cow::Owned(b"a".to_vec()),
            flags: flags(&[(b'b', b""), (b'v', b"")])
        }
    );
    assert!(matches!(req(b"mg YWJj b k v\r\n"), Request::MetaGet { key, .. } if *key == *b"abc"));
    // "mg YQ==YQ== b" -> "EN": decoding stops after the first padded block
    assert!(matches!(req(b"mg YQ==YQ== b\r\n"), Request::MetaGet { key, .. } if *key == *b"a"));
    // "mg YR== b" -> "EN": non-canonical padding bits are accepted
    assert!(matches!(req(b"mg YR== b\r\n"), Request::MetaGet { key, .. } if *key == *b"a"));
    // "mg YQ= b v", "mg Y b v", "mg !!!! b v", "mg YQ b", "mg ==== b" -> error decoding key
    for input in [
        &b"mg YQ= b v\r\n"[..],
        b"mg Y b v\r\n",
        b"mg !!!! b v\r\n",
        b"mg YQ b\r\n",
        b"mg ==== b\r\n",
    ] {
        assert_eq!(transcript(input), "CLIENT_ERROR error decoding key\r\n");
    }
    // "mg YQ== b b" -> duplicate flag
    assert_eq!(transcript(b"mg YQ== b b\r\n"), "CLIENT_ERROR duplicate flag\r\n");
    // Bytes outside the alphabet are skipped, as memcached's decoder does.
    assert_eq!(decode_base64(b"Y!Q=\t="), Some(b"a".to_vec()));
    assert_eq!(decode_base64(b"YWJj"), Some(b"abc".to_vec()));
    assert_eq!(decode_base64(b"YWI="), Some(b"ab".to_vec()));
    assert_eq!(decode_base64(b"A==="), None);
    assert_eq!(decode_base64(b""), None);
}

#[test]
fn meta_set_forms() {
    // "ms a 1\r\nx\r\n" -> "HD"; "ms a 01" -> "HD"
    assert_eq!(
        req(b"ms a 1\r\nx\r\n"),
        Request::MetaSet { key: Cow::Borrowed(b"a"), data: b"x", flags: flags(&[]) }
    );
    assert!(matches!(req(b"ms a 01\r\nx\r\n"), Request::MetaSet { data: b"x", .. }));
    // "ms a 1 T0 F5 c k\r\nx\r\n" -> "HD c23 ka"
    assert_eq!(
        req(b"ms a 1 T0 F5 c k\r\nx\r\n"),
        Request::MetaSet {
            key: Cow::Borrowed(b"a"),
            data: b"x",
            flags: flags(&[(b'T', b"0"), (b'F', b"5"), (b'c', b""), (b'k', b"")])
        }
    );
    // "ms a 1 ME" -> "NS"; "ms a 1 I" -> "HD"; "ms a 1 C99" -> "EX"; "ms a 1 q" -> nothing
    for input in [
        &b"ms a 1 ME\r\nx\r\n"[..],
        b"ms a 1 I\r\nx\r\n",
        b"ms a 1 C99\r\nx\r\n",
        b"ms a 1 q\r\nx\r\n",
    ] {
        assert!(matches!(req(input), Request::MetaSet { .. }));
    }
    // "ms a 4294967297\r\nx\r\n" -> "HD" (length 1)
    assert!(matches!(req(b"ms a 4294967297\r\nx\r\n"), Request::MetaSet { data: b"x", .. }));
    // "ms YQ== 1 b\r\nx\r\nmg a v" -> "HD\r\nVA 1\r\nx"
    assert!(matches!(req(b"ms YQ== 1 b\r\nx\r\n"), Request::MetaSet { key, .. } if *key == *b"a"));
    assert_eq!(p(b"ms a 3 T1\r\nab"), Parsed::Incomplete);
}

#[test]
fn meta_set_errors() {
    let bad = "CLIENT_ERROR bad command line format\r\n";
    // "ms" -> ERROR; "ms a" -> bad format
    assert_eq!(transcript(b"ms\r\n"), "ERROR\r\n");
    assert_eq!(transcript(b"ms a\r\n"), bad);
    // Errors before the length is known swallow nothing: "ms a x\r\nx\r\n", "ms a -1",
    // "ms a 1x", "ms <251 k> 1" -> "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    for input in [&b"ms a x\r\nx\r\n"[..], b"ms a -1\r\nx\r\n", b"ms a 1x\r\nx\r\n"] {
        assert_eq!(transcript(input), format!("{bad}ERROR\r\n"));
    }
    assert_eq!(transcript(&cat(&[b"ms ", &k(251), b" 1\r\nx\r\n"])), format!("{bad}ERROR\r\n"));
    // "ms a 2147483646" -> bad command line format
    assert_eq!(transcript(b"ms a 2147483646\r\n"), bad);
    // 17 flags: "options flags too long", nothing swallowed: "...\r\nx\r\nmn" -> + "ERROR\r\nMN"
    assert_eq!(
        transcript(b"ms a 1 c f h k l O P L q s t u v I E j x\r\nx\r\nmn\r\n"),
        "CLIENT_ERROR options flags too long\r\nERROR\r\n<mn>"
    );
    // Errors after the length swallow the data block: "ms a 1 z\r\nx\r\nmn\r\n" -> "CLIENT_ERROR
    // invalid flag\r\nMN\r\n", and so on.
    let cases: &[(&[u8], &str)] = &[
        (b"ms a 1 z\r\nx\r\nmn\r\n", "CLIENT_ERROR invalid flag\r\n"),
        (b"ms a 1 v v\r\nx\r\nmn\r\n", "CLIENT_ERROR duplicate flag\r\n"),
        (b"ms a 1 Tx\r\nx\r\nmn\r\n", "CLIENT_ERROR bad token in command line format\r\n"),
        (b"ms a 1 q Tx\r\nx\r\nmn\r\n", "CLIENT_ERROR bad token in command line format\r\n"),
        (b"ms a 1 Fx\r\nx\r\nmn\r\n", "CLIENT_ERROR bad command line format\r\n"),
        (b"ms a 1 MX\r\nx\r\nmn\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"),
        (b"ms a 1 Ma\r\nx\r\nmn\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"),
        (b"ms a 1 MSS\r\nx\r\nmn\r\n", "CLIENT_ERROR incorrect length for M token\r\n"),
        (b"ms !!!! 1 b\r\nx\r\nmn\r\n", "CLIENT_ERROR error decoding key\r\n"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            transcript(input),
            format!("{expected}<mn>"),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let opaque = cat(&[b"ms a 1 O", &[b'x'; 33], b"\r\nx\r\nmn\r\n"]);
    assert_eq!(transcript(&opaque), "CLIENT_ERROR opaque token too long\r\n<mn>");
    // "ms a 1\r\nxyz\r\nmn" and "ms a 1 q\r\nxyz\r\nmn" -> "CLIENT_ERROR bad data chunk\r\nERROR\r\nMN"
    assert_eq!(
        transcript(b"ms a 1\r\nxyz\r\nmn\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n<mn>"
    );
    assert_eq!(
        transcript(b"ms a 1 q\r\nxyz\r\nmn\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n<mn>"
    );
    // "ms a 2000000 [q]" + data + "mn" -> "SERVER_ERROR object too large for cache\r\nMN" (q or
    // not), and the old item is gone ("set u ..; ms u 2000000 ME ..; get u" -> "END").
    assert_eq!(
        p(b"ms a 2000000 q\r\n"),
        Parsed::Invalid {
            reply: reply::TOO_LARGE,
            consumed: 16,
            swallow: 2000002,
            close: false,
            unlink: Some(Cow::Borrowed(b"a"))
        }
    );
    assert!(matches!(
        p(b"ms dQ== 2000000 b\r\n"),
        Parsed::Invalid { unlink: Some(key), .. } if *key == *b"u"
    ));
    // "ms a 1048516" fits, "ms a 1048517" does not; "ms a 1048512 F5" fits, 1048513 does not.
    assert!(matches!(p(b"ms a 1048516\r\n"), Parsed::Incomplete));
    assert!(matches!(p(b"ms a 1048517\r\n"), Parsed::Invalid { swallow: 1048519, .. }));
    assert!(matches!(p(b"ms a 1048512 F5\r\n"), Parsed::Incomplete));
    assert!(matches!(p(b"ms a 1048513 F5\r\n"), Parsed::Invalid { swallow: 1048515, .. }));
}

#[test]
fn meta_delete_and_arith() {
    // "md a" -> "HD"/"NF"; "md a q" -> "NF"; "md a MX" -> "NF" (md ignores the mode)
    assert_eq!(
        req(b"md a\r\n"),
        Request::MetaDelete { key: Cow::Borrowed(b"a"), flags: flags(&[]) }
    );
    assert!(matches!(req(b"md a q\r\n"), Request::MetaDelete { .. }));
    assert!(matches!(req(b"md a MX\r\n"), Request::MetaDelete { .. }));
    // "ma a" -> "NF"; "ma a MI" -> "NF"; "ma a M+ N0" -> "HD"
    assert_eq!(
        req(b"ma a\r\n"),
        Request::MetaArith { key: Cow::Borrowed(b"a"), flags: flags(&[]) }
    );
    assert!(matches!(req(b"ma a MI\r\n"), Request::MetaArith { .. }));
    assert_eq!(
        req(b"ma a M+ N0 D5 J7\r\n"),
        Request::MetaArith {
            key: Cow::Borrowed(b"a"),
            flags: flags(&[(b'M', b"+"), (b'N', b"0"), (b'D', b"5"), (b'J', b"7")])
        }
    );
    let cases: &[(&[u8], &str)] = &[
        (b"md\r\n", "ERROR\r\n"),
        (b"ma\r\n", "ERROR\r\n"),
        // Every flag error of md and ma has one message.
        (b"md a z\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"md a v v\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"md a Tx\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"md !!!! b\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"ma a z\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"ma a Dx\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"ma a Jx\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"ma !!!! b\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
        // "ma a MX" and "ma a MX q" -> invalid mode
        (b"ma a MX\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n"),
        (b"ma a MX q\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n"),
        // 18 flags -> "options flags too long" (without "are")
        (
            b"md a c f h k l O P L q s t u v I E j x y\r\n",
            "CLIENT_ERROR options flags too long\r\n",
        ),
        (
            b"ma a c f h k l O P L q s t u v I E j x y\r\n",
            "CLIENT_ERROR options flags too long\r\n",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(transcript(input), *expected, "{:?}", String::from_utf8_lossy(input));
    }
    for cmd in [&b"md"[..], b"ma"] {
        let opaque = cat(&[cmd, b" a O", &[b'x'; 33], b"\r\n"]);
        assert_eq!(transcript(&opaque), "CLIENT_ERROR opaque token too long\r\n");
        let long = cat(&[cmd, b" ", &k(251), b" q\r\n"]);
        assert_eq!(transcript(&long), "CLIENT_ERROR bad command line format\r\n");
    }
}

#[test]
fn meta_flag_numbers_for_the_executor() {
    let Request::MetaArith { flags, .. } =
        req(b"ma a N-5 T4294967306 C18446744073709551615 D3 F7\r\n")
    else {
        panic!()
    };
    assert_eq!(flags.signed(b'N'), Some(-5));
    assert_eq!(flags.signed(b'T'), Some(10));
    assert_eq!(flags.unsigned64(b'C'), Some(u64::MAX));
    assert_eq!(flags.unsigned64(b'D'), Some(3));
    assert_eq!(flags.unsigned32(b'F'), Some(7));
    assert_eq!(flags.signed(b'R'), None);
}

#[test]
fn c_numbers() {
    assert_eq!(c_strtoull(b"0"), Some(0));
    assert_eq!(c_strtoull(b"-0"), Some(0));
    assert_eq!(c_strtoull(b"+7"), Some(7));
    assert_eq!(c_strtoull(b"\t7"), Some(7));
    assert_eq!(c_strtoull(b"7\x0b"), Some(7));
    assert_eq!(c_strtoull(b"-1"), None);
    // strtoull wraps a negative number; safe_strtoull only refuses results >= 2^63.
    assert_eq!(c_strtoull(b"-9223372036854775809"), Some(i64::MAX as u64));
    assert_eq!(c_strtoull(b"18446744073709551616"), None);
    assert_eq!(c_strtoull(b""), None);
    assert_eq!(c_strtoull(b"-"), None);
    assert_eq!(c_strtoull(b"1 "), Some(1));
    assert_eq!(c_strtoul(b"4294967297"), Some(1));
    assert_eq!(c_strtol(b"-2147483648"), Some(i32::MIN));
    assert_eq!(c_strtol(b"2147483648"), Some(i32::MIN));
    assert_eq!(c_strtol(b"9223372036854775807"), Some(-1));
    assert_eq!(c_strtol(b"9223372036854775808"), None);
    assert_eq!(c_strtol(b"-9223372036854775808"), Some(0));
    assert_eq!(c_strtol(b"-9223372036854775809"), None);
}

#[test]
fn pipelines() {
    let input = b"get a\r\nset b 0 0 2\r\nhi\r\nmn\r\ndelete b\r\n";
    assert_eq!(transcript(input), "<get><store><mn><delete>");
    let Parsed::Request { consumed, .. } = p(input) else { panic!() };
    assert_eq!(consumed, 7);
}

// ---------------------------------------------------------------------------------------
// Properties.

fn leak(v: Vec<u8>) -> &'static [u8] {
    Vec::leak(v)
}

fn key() -> impl Strategy<Value = &'static [u8]> {
    "[!-~]{1,250}".prop_map(|s| leak(s.into_bytes()))
}

fn token() -> impl Strategy<Value = &'static [u8]> {
    "[!-~]{1,20}".prop_map(|s| leak(s.into_bytes()))
}

fn base64(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// A meta command's flags: distinct letters, each with a token memcached accepts.
fn meta_flags_strategy(
    max: usize,
    mode: &'static [u8],
) -> impl Strategy<Value = Vec<MetaFlag<'static>>> {
    let letters: Vec<u8> = b"NTRCFMJDlOPLkstcfvhuqI".to_vec();
    let mut unique = letters.clone();
    unique.sort_unstable();
    unique.dedup();
    proptest::sample::subsequence(unique, 0..=max).prop_shuffle().prop_flat_map(move |letters| {
        letters
            .into_iter()
            .map(|flag| {
                let token: BoxedStrategy<&'static [u8]> = match flag {
                    b'N' | b'T' | b'R' => {
                        any::<i32>().prop_map(|n| leak(n.to_string().into_bytes())).boxed()
                    }
                    b'C' | b'J' | b'D' => {
                        any::<u64>().prop_map(|n| leak(n.to_string().into_bytes())).boxed()
                    }
                    b'F' => any::<u32>().prop_map(|n| leak(n.to_string().into_bytes())).boxed(),
                    b'M' => {
                        proptest::sample::select(mode.to_vec()).prop_map(|m| leak(vec![m])).boxed()
                    }
                    b'O' => "[!-~]{0,31}".prop_map(|s| leak(s.into_bytes())).boxed(),
                    _ => Just(&b""[..]).boxed(),
                };
                token.prop_map(move |token| MetaFlag { flag, token })
            })
            .collect::<Vec<_>>()
    })
}

/// A meta key: plain, or binary sent in base64 (then a `b` flag is added at `at`).
fn meta_key() -> impl Strategy<Value = (Cow<'static, [u8]>, bool)> {
    prop_oneof![
        key().prop_map(|k| (Cow::Borrowed(k), false)),
        proptest::collection::vec(any::<u8>(), 1..=186).prop_map(|k| (Cow::Owned(k), true)),
    ]
}

fn with_b(mut flags: Vec<MetaFlag<'static>>, binary: bool, at: usize) -> MetaFlags<'static> {
    if binary {
        flags.insert(at.min(flags.len()), MetaFlag { flag: b'b', token: b"" });
    }
    MetaFlags { flags }
}

fn request() -> impl Strategy<Value = Request<'static>> {
    let get = (0..4u8, any::<i32>(), proptest::collection::vec(key(), 1..40)).prop_map(
        |(kind, exptime, keys)| {
            let kind =
                [GetKind::Get, GetKind::Gets, GetKind::Gat, GetKind::Gats][usize::from(kind)];
            let exptime =
                matches!(kind, GetKind::Gat | GetKind::Gats).then_some(i64::from(exptime));
            Request::Get { kind, exptime, keys }
        },
    );
    let store = (
        0..6u8,
        key(),
        any::<u32>(),
        any::<i32>(),
        any::<u64>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..100),
    )
        .prop_map(|(kind, key, flags, exptime, cas, noreply, data)| {
            let kind = [
                StoreKind::Set,
                StoreKind::Add,
                StoreKind::Replace,
                StoreKind::Append,
                StoreKind::Prepend,
                StoreKind::Cas,
            ][usize::from(kind)];
            let cas = if kind == StoreKind::Cas { cas } else { 0 };
            Request::Store {
                kind,
                key,
                flags,
                exptime: exptime.into(),
                cas,
                noreply,
                data: leak(data),
            }
        });
    let simple = prop_oneof![
        (key(), any::<bool>()).prop_map(|(key, noreply)| Request::Delete { key, noreply }),
        (any::<bool>(), key(), any::<u64>(), any::<bool>())
            .prop_map(|(incr, key, delta, noreply)| Request::Arith { incr, key, delta, noreply }),
        (key(), any::<i32>(), any::<bool>()).prop_map(|(key, exptime, noreply)| Request::Touch {
            key,
            exptime: exptime.into(),
            noreply
        }),
        (any::<i32>(), any::<bool>())
            .prop_map(|(delay, noreply)| Request::FlushAll { delay: delay.into(), noreply }),
        proptest::collection::vec(token(), 0..22).prop_map(|args| Request::Stats { args }),
        Just(Request::Version),
        Just(Request::Quit),
        Just(Request::MetaNoop),
        (any::<u32>(), any::<bool>())
            .prop_map(|(level, noreply)| Request::Verbosity { level, noreply }),
        (any::<u32>(), any::<bool>())
            .prop_map(|(mb, noreply)| Request::CacheMemlimit { megabytes: mb.into(), noreply }),
    ];
    let meta = prop_oneof![
        (meta_key(), meta_flags_strategy(16, b"SX"), any::<usize>()).prop_map(
            |((key, binary), flags, at)| {
                Request::MetaGet { key, flags: with_b(flags, binary, at) }
            }
        ),
        (meta_key(), meta_flags_strategy(16, b"SX"), any::<usize>()).prop_map(
            |((key, binary), flags, at)| {
                Request::MetaDelete { key, flags: with_b(flags, binary, at) }
            }
        ),
        (meta_key(), meta_flags_strategy(16, b"I+D-"), any::<usize>()).prop_map(
            |((key, binary), flags, at)| {
                Request::MetaArith { key, flags: with_b(flags, binary, at) }
            }
        ),
        (
            meta_key(),
            meta_flags_strategy(15, b"EAPRS"),
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|((key, binary), flags, at, data)| Request::MetaSet {
                key,
                data: leak(data),
                flags: with_b(flags, binary, at)
            }),
        meta_key()
            .prop_map(|(key, binary)| Request::MetaDebug { key, flags: with_b(vec![], binary, 0) }),
    ];
    prop_oneof![get, store, simple, meta]
}

/// The text a client sends for `request`.
fn render(request: &Request<'_>) -> Vec<u8> {
    fn noreply(out: &mut Vec<u8>, noreply: bool) {
        if noreply {
            out.extend_from_slice(b" noreply");
        }
    }
    fn meta(out: &mut Vec<u8>, cmd: &str, key: &[u8], flags: &MetaFlags<'_>, len: Option<usize>) {
        out.extend_from_slice(cmd.as_bytes());
        out.push(b' ');
        if flags.has(b'b') {
            out.extend_from_slice(&base64(key));
        } else {
            out.extend_from_slice(key);
        }
        if let Some(len) = len {
            out.extend_from_slice(format!(" {len}").as_bytes());
        }
        for f in &flags.flags {
            out.push(b' ');
            out.push(f.flag);
            out.extend_from_slice(f.token);
        }
    }
    let mut out = Vec::new();
    match request {
        Request::Get { kind, exptime, keys } => {
            let word = match kind {
                GetKind::Get => "get",
                GetKind::Gets => "gets",
                GetKind::Gat => "gat",
                GetKind::Gats => "gats",
            };
            out.extend_from_slice(word.as_bytes());
            if let Some(exptime) = exptime {
                out.extend_from_slice(format!(" {exptime}").as_bytes());
            }
            for key in keys {
                out.push(b' ');
                out.extend_from_slice(key);
            }
        }
        Request::Store { kind, key, flags, exptime, cas, noreply: nr, data } => {
            let word = match kind {
                StoreKind::Set => "set",
                StoreKind::Add => "add",
                StoreKind::Replace => "replace",
                StoreKind::Append => "append",
                StoreKind::Prepend => "prepend",
                StoreKind::Cas => "cas",
            };
            out.extend_from_slice(format!("{word} ").as_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(format!(" {flags} {exptime} {}", data.len()).as_bytes());
            if *kind == StoreKind::Cas {
                out.extend_from_slice(format!(" {cas}").as_bytes());
            }
            noreply(&mut out, *nr);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
        }
        Request::Delete { key, noreply: nr } => {
            out.extend_from_slice(b"delete ");
            out.extend_from_slice(key);
            noreply(&mut out, *nr);
        }
        Request::Arith { incr, key, delta, noreply: nr } => {
            out.extend_from_slice(if *incr { b"incr " } else { b"decr " });
            out.extend_from_slice(key);
            out.extend_from_slice(format!(" {delta}").as_bytes());
            noreply(&mut out, *nr);
        }
        Request::Touch { key, exptime, noreply: nr } => {
            out.extend_from_slice(b"touch ");
            out.extend_from_slice(key);
            out.extend_from_slice(format!(" {exptime}").as_bytes());
            noreply(&mut out, *nr);
        }
        Request::FlushAll { delay, noreply: nr } => {
            out.extend_from_slice(format!("flush_all {delay}").as_bytes());
            noreply(&mut out, *nr);
        }
        Request::Stats { args } => {
            out.extend_from_slice(b"stats");
            for arg in args {
                out.push(b' ');
                out.extend_from_slice(arg);
            }
        }
        Request::Version => out.extend_from_slice(b"version"),
        Request::Verbosity { level, noreply: nr } => {
            out.extend_from_slice(format!("verbosity {level}").as_bytes());
            noreply(&mut out, *nr);
        }
        Request::Quit => out.extend_from_slice(b"quit"),
        Request::MetaGet { key, flags } => meta(&mut out, "mg", key, flags, None),
        Request::MetaSet { key, data, flags } => {
            meta(&mut out, "ms", key, flags, Some(data.len()));
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
        }
        Request::MetaDelete { key, flags } => meta(&mut out, "md", key, flags, None),
        Request::MetaArith { key, flags } => meta(&mut out, "ma", key, flags, None),
        Request::MetaNoop => out.extend_from_slice(b"mn"),
        Request::MetaDebug { key, flags } => {
            meta(&mut out, "me", key, &MetaFlags::default(), None);
            if flags.has(b'b') {
                out.truncate(3);
                out.extend_from_slice(&base64(key));
                out.extend_from_slice(b" b");
            }
        }
        Request::CacheMemlimit { megabytes, noreply: nr } => {
            out.extend_from_slice(format!("cache_memlimit {megabytes}").as_bytes());
            noreply(&mut out, *nr);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Bytes that look like the protocol: command words, numbers, flags and noise.
fn protocolish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        proptest::sample::select(vec![
            &b"get "[..],
            b"gets ",
            b"gat ",
            b"set ",
            b"cas ",
            b"add ",
            b"delete ",
            b"incr ",
            b"touch ",
            b"flush_all",
            b"mg ",
            b"ms ",
            b"md ",
            b"ma ",
            b"mn",
            b"me ",
            b"noreply",
            b"verbosity ",
            b"stats",
            b"quit",
            b"version",
            b"cache_memlimit ",
            b" ",
            b"\r\n",
            b"\n",
            b"\r",
            b"\0",
            b"0",
            b"1",
            b"-1",
            b"5",
            b"4294967297",
            b"2147483645",
            b"b",
            b"YQ==",
            b"T",
            b"q",
            b"v",
            b"O",
            b"M",
            b"HTTP/1.1",
        ])
        .prop_map(<[u8]>::to_vec),
        "[a-zA-Z0-9]{1,8}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 1..4),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// Feeds `input` as a connection does, checking the contract; returns the requests.
fn drive<'a>(input: &'a [u8], limits: &Limits) -> Vec<Request<'a>> {
    let mut requests = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let rest = &input[at..];
        match parse(rest, limits) {
            Parsed::Request { request, consumed } => {
                assert!(consumed > 0 && consumed <= rest.len());
                requests.push(request);
                at += consumed;
            }
            Parsed::Incomplete => break,
            Parsed::Invalid { reply, consumed, swallow, close, .. } => {
                assert!(consumed > 0 && consumed <= rest.len());
                assert!(reply.is_empty() || reply.ends_with(b"\r\n"));
                at += consumed;
                at = at.saturating_add(swallow).min(input.len());
                if close {
                    break;
                }
            }
        }
    }
    requests
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// (a) Any bytes: no panic, progress, nothing consumed beyond the input.
    #[test]
    fn any_bytes_are_safe(input in proptest::collection::vec(any::<u8>(), 0..3000)) {
        drive(&input, &Limits::default());
        let tight = Limits { max_item_size: 64, max_key_len: 250, max_line: 16, max_get_line: 64 };
        drive(&input, &tight);
    }

    /// (a) Protocol-like bytes reach the deeper paths: still no panic, no overrun.
    #[test]
    fn protocolish_bytes_are_safe(input in protocolish()) {
        drive(&input, &Limits::default());
        let tight = Limits { max_item_size: 64, max_key_len: 250, max_line: 16, max_get_line: 64 };
        drive(&input, &tight);
    }

    /// (b) A valid request rendered as text parses back to itself, using all of the text.
    #[test]
    fn rendered_requests_parse_back(request in request()) {
        let text = render(&request);
        prop_assert_eq!(p(&text), Parsed::Request { request, consumed: text.len() });
    }

    /// (c) Every prefix of a pipeline is Incomplete until the first request is whole, and
    /// then the same result; fed byte by byte the pipeline gives back every request.
    #[test]
    fn prefixes_wait_then_agree(requests in proptest::collection::vec(request(), 1..4)) {
        let texts: Vec<Vec<u8>> = requests.iter().map(render).collect();
        // A line without its newline may only outgrow max_line for get/gets (memcached
        // closes a long partial gat line), so such pipelines are not about waiting.
        for text in &texts {
            let line = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
            prop_assume!(line <= Limits::default().max_line || text.starts_with(b"get"));
        }
        let pipeline = texts.concat();
        let first = texts[0].len();
        for end in 0..first {
            prop_assert_eq!(p(&pipeline[..end]), Parsed::Incomplete, "prefix {}", end);
        }
        let whole = p(&pipeline);
        for end in first..=pipeline.len() {
            prop_assert_eq!(&p(&pipeline[..end]), &whole);
        }
        // Byte by byte, as a connection with a growing buffer.
        let mut buffer = Vec::new();
        let mut got = Vec::new();
        for &byte in &pipeline {
            buffer.push(byte);
            while let Parsed::Request { request, consumed } = p(&buffer) {
                got.push(render(&request));
                buffer.drain(..consumed);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(got, texts);
    }
}
