//! `cairn 9p serve` at the byte level: a small blocking client built on cairn's own codec sends
//! what real clients should never send (bad framing, unknown types, fids that were never
//! attached, walks longer than 16 names, names that are not UTF-8) and tries every way out of
//! an export. The server must answer with an error or close that one connection, stay up for
//! the next, and never hand out a byte from outside the exported directory.

mod ninep_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cairn_9p::codec::{
    decode_rmessage, encode_tmessage, Dialect, Rmessage, Tmessage, WalkList, NOFID, NONUNAME, NOTAG,
};
use cairn_9p::errno::{ENOENT, ENOTDIR, EROFS};
use ninep_common::{Peer, Server, TempDir};

const MSIZE: u32 = 8192;

/// A blocking 9P2000.L connection that sends one request at a time.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    fn connect(server: &Server) -> Raw {
        let stream = TcpStream::connect(server.addr()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { stream }
    }

    /// Connects, negotiates 9P2000.L and attaches fid 0 to the export.
    fn attached(server: &Server) -> Raw {
        let mut raw = Raw::connect(server);
        let reply = raw.call(NOTAG, &Tmessage::Version { msize: MSIZE, version: "9P2000.L" });
        assert!(reply.windows(8).any(|w| w == b"9P2000.L"), "Rversion: {reply:?}");
        let attach = Tmessage::Attach {
            fid: 0,
            afid: NOFID,
            uname: "root",
            aname: &server.aname,
            n_uname: Some(NONUNAME),
        };
        raw.expect_ok(&attach);
        raw
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// The next whole reply frame, or None if the server closed the connection.
    fn recv_frame(&mut self) -> Option<Vec<u8>> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let len = u32::from_le_bytes(size) as usize;
        assert!((7..=MSIZE as usize).contains(&len), "reply size {len}");
        let mut frame = size.to_vec();
        frame.resize(len, 0);
        self.stream.read_exact(&mut frame[4..]).ok()?;
        Some(frame)
    }

    fn call(&mut self, tag: u16, msg: &Tmessage<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_tmessage(tag, msg, Dialect::P2000L, MSIZE, &mut out).expect("encode");
        self.send_bytes(&out);
        self.recv_frame().expect("a reply")
    }

    /// Sends `msg`; returns the errno of an Rlerror, or None for any other reply.
    fn errno_of(&mut self, msg: &Tmessage<'_>) -> Option<u32> {
        let frame = self.call(1, msg);
        match decode_rmessage(&frame, Dialect::P2000L, MSIZE).expect("decodable reply").1 {
            Rmessage::Lerror { ecode } => Some(ecode),
            _ => None,
        }
    }

    fn expect_ok(&mut self, msg: &Tmessage<'_>) {
        assert_eq!(self.errno_of(msg), None, "{msg:?} failed");
    }

    fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Option<u32> {
        let names = WalkList::from_slice(names).expect("at most 16 names");
        let frame = self.call(1, &Tmessage::Walk { fid, newfid, names });
        match decode_rmessage(&frame, Dialect::P2000L, MSIZE).expect("decodable").1 {
            Rmessage::Lerror { ecode } => Some(ecode),
            Rmessage::Walk { qids } if qids.len() < names.len() => Some(ENOENT),
            _ => None,
        }
    }

    /// Reads a whole open file through `fid`.
    fn read_all(&mut self, fid: u32) -> Vec<u8> {
        let mut data = Vec::new();
        loop {
            let frame =
                self.call(1, &Tmessage::Read { fid, offset: data.len() as u64, count: 4096 });
            match decode_rmessage(&frame, Dialect::P2000L, MSIZE).expect("decodable").1 {
                Rmessage::Read { data: [] } => return data,
                Rmessage::Read { data: chunk } => data.extend_from_slice(chunk),
                other => panic!("read: {other:?}"),
            }
        }
    }
}

/// A frame with a given type byte, tag 1 and `body`, its size field set to `size` (or the
/// true size when None).
fn frame(ty: u8, body: &[u8], size: Option<u32>) -> Vec<u8> {
    let len = 7 + body.len() as u32;
    let mut out = size.unwrap_or(len).to_le_bytes().to_vec();
    out.push(ty);
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The server still serves a new connection normally.
fn still_serves(server: &mut Server) {
    assert!(server.is_alive(), "the server died");
    let mut raw = Raw::attached(server);
    assert_eq!(raw.walk(0, 1, &[]), None);
}

#[test]
fn bad_input_gets_an_error_or_a_closed_connection_and_the_server_stays_up() {
    let dir = TempDir::new("wire-bad");
    let mut server = Server::start(Peer::Cairn, dir.path(), &[]);

    // Framing that cannot be trusted closes the connection.
    for bytes in [
        frame(100, &[], Some(3)),               // size below the header
        frame(100, &[0; 8], Some(MSIZE * 16)),  // size above any msize
        frame(120, &[1, 2, 3], Some(u32::MAX)), // size that would wrap
    ] {
        let mut raw = Raw::connect(&server);
        raw.send_bytes(&bytes);
        raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
        while raw.recv_frame().is_some() {}
        still_serves(&mut server);
    }
    // A message cut short, then the peer gone.
    {
        let mut raw = Raw::connect(&server);
        raw.send_bytes(&frame(100, &[0; 4], Some(40)));
        drop(raw);
        still_serves(&mut server);
    }

    // Well-framed nonsense gets an error reply under its tag, and the session goes on.
    let mut raw = Raw::attached(&server);
    for bytes in [
        frame(0x55, &[1, 2, 3], None), // unknown type
        frame(24, &[0, 0, 0], None),   // Tgetattr cut short inside
        frame(104, &[9, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 0xc3, 0x28, 0, 0, 0, 0, 0], None),
    ] {
        raw.send_bytes(&bytes);
        let reply = raw.recv_frame().expect("an error reply, not a closed connection");
        assert_eq!(reply[4], 7, "Rlerror expected, got type {}", reply[4]);
        assert_eq!(&reply[5..7], &1u16.to_le_bytes(), "the reply carries the request's tag");
    }
    // Fids never attached, fids reused, walks too long.
    assert!(raw.errno_of(&Tmessage::Read { fid: 77, offset: 0, count: 10 }).is_some());
    assert!(raw.errno_of(&Tmessage::Clunk { fid: 78 }).is_some());
    let reattach = Tmessage::Attach {
        fid: 0,
        afid: NOFID,
        uname: "root",
        aname: &server.aname,
        n_uname: Some(NONUNAME),
    };
    assert!(raw.errno_of(&reattach).is_some(), "attach to a fid in use must fail");
    let mut seventeen = frame(110, &[], None);
    seventeen.truncate(7);
    seventeen.extend_from_slice(&0u32.to_le_bytes());
    seventeen.extend_from_slice(&5u32.to_le_bytes());
    seventeen.extend_from_slice(&17u16.to_le_bytes());
    for _ in 0..17 {
        seventeen.extend_from_slice(&1u16.to_le_bytes());
        seventeen.push(b'a');
    }
    let len = seventeen.len() as u32;
    seventeen[..4].copy_from_slice(&len.to_le_bytes());
    raw.send_bytes(&seventeen);
    let reply = raw.recv_frame().expect("an error reply to a 17-name walk");
    assert_eq!(reply[4], 7, "Rlerror expected for a 17-name walk");
    assert_eq!(raw.walk(0, 1, &[]), None, "the session still works");
    still_serves(&mut server);
}

/// An export with a secret beside it and every kind of link pointing at it.
fn escape_tree() -> (TempDir, std::path::PathBuf) {
    let outer = TempDir::new("wire-escape");
    let export = outer.path().join("export");
    std::fs::create_dir_all(export.join("sub")).unwrap();
    std::fs::write(outer.path().join("secret"), b"SECRET").unwrap();
    std::fs::write(export.join("inside"), b"inside").unwrap();
    std::os::unix::fs::symlink("../secret", export.join("rel")).unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret"), export.join("abs")).unwrap();
    std::os::unix::fs::symlink("..", export.join("up")).unwrap();
    std::os::unix::fs::symlink("/etc", export.join("etc")).unwrap();
    (outer, export)
}

#[test]
fn no_walk_or_open_reaches_outside_the_export() {
    let (_outer, export) = escape_tree();
    let server = Server::start(Peer::Cairn, &export, &[]);
    let mut raw = Raw::attached(&server);

    // `..` at the root is the root: walking on to `secret` finds nothing.
    assert_eq!(raw.walk(0, 1, &["..", "secret"]), Some(ENOENT));
    assert_eq!(raw.walk(0, 1, &["sub", "..", "..", "secret"]), Some(ENOENT));
    assert!(raw.walk(0, 1, &["..", "..", "..", "etc", "passwd"]).is_some());
    // Links are never followed through, absolute or relative: the walk stops at the link (a
    // partial Rwalk, which carries no errno) or fails outright with ENOTDIR.
    for path in [["up", "secret"], ["etc", "passwd"]] {
        let failed = raw.walk(0, 1, &path);
        assert!(matches!(failed, Some(ENOENT | ENOTDIR)), "walk {path:?}: {failed:?}");
    }
    // ... and opening a link to a file outside does not open the file.
    for link in ["rel", "abs"] {
        assert_eq!(raw.walk(0, 2, &[link]), None, "the link itself can be named");
        let opened = raw.errno_of(&Tmessage::Lopen { fid: 2, flags: 0 });
        assert!(opened.is_some(), "opening {link} must fail, not follow it");
        if opened.is_none() {
            assert_ne!(raw.read_all(2), b"SECRET");
        }
        raw.expect_ok(&Tmessage::Clunk { fid: 2 });
    }
    // Creating through a link, renaming out, linking in: all refused.
    assert!(raw.walk(0, 3, &["up"]).is_none());
    let created = raw.errno_of(&Tmessage::Lcreate {
        fid: 3,
        name: "planted",
        flags: 0o101,
        mode: 0o644,
        gid: 0,
    });
    assert!(created.is_some(), "create inside a link to the parent must fail");
    assert!(!export.parent().unwrap().join("planted").exists());
    assert!(raw
        .errno_of(&Tmessage::Renameat {
            olddirfid: 0,
            oldname: "inside",
            newdirfid: 0,
            newname: "../moved",
        })
        .is_some());
    assert!(!export.parent().unwrap().join("moved").exists());

    // The inside file reads fine: the refusals above are not a broken server.
    assert_eq!(raw.walk(0, 4, &["inside"]), None);
    raw.expect_ok(&Tmessage::Lopen { fid: 4, flags: 0 });
    assert_eq!(raw.read_all(4), b"inside");
}

#[test]
fn a_read_only_export_refuses_every_change() {
    let (_outer, export) = escape_tree();
    let server = Server::start(Peer::Cairn, &export, &["--read-only"]);
    let mut raw = Raw::attached(&server);

    assert_eq!(raw.walk(0, 1, &["inside"]), None);
    for flags in [1u32, 2, 0o1000] {
        assert_eq!(raw.errno_of(&Tmessage::Lopen { fid: 1, flags }), Some(EROFS));
    }
    assert_eq!(raw.walk(0, 2, &[]), None);
    let create = Tmessage::Lcreate { fid: 2, name: "new", flags: 0o101, mode: 0o644, gid: 0 };
    assert_eq!(raw.errno_of(&create), Some(EROFS));
    let mkdir = Tmessage::Mkdir { dfid: 0, name: "d", mode: 0o755, gid: 0 };
    assert_eq!(raw.errno_of(&mkdir), Some(EROFS));
    let unlink = Tmessage::Unlinkat { dirfd: 0, name: "inside", flags: 0 };
    assert_eq!(raw.errno_of(&unlink), Some(EROFS));
    let rename = Tmessage::Renameat { olddirfid: 0, oldname: "inside", newdirfid: 0, newname: "x" };
    assert_eq!(raw.errno_of(&rename), Some(EROFS));
    let truncate = Tmessage::Setattr {
        fid: 1,
        attr: cairn_9p::codec::SetAttr { valid: 0x8, size: 0, ..Default::default() },
    };
    assert_eq!(raw.errno_of(&truncate), Some(EROFS));
    // Reading still works, and nothing changed on disk.
    raw.expect_ok(&Tmessage::Lopen { fid: 1, flags: 0 });
    assert_eq!(raw.read_all(1), b"inside");
    assert_eq!(std::fs::read(export.join("inside")).unwrap(), b"inside");
    assert!(!export.join("new").exists() && !export.join("d").exists());
}

#[test]
fn hundreds_of_fids_stay_open_at_once() {
    let dir = TempDir::new("wire-fids");
    for i in 0..300 {
        std::fs::write(dir.path().join(format!("f{i:03}")), format!("file number {i}")).unwrap();
    }
    let server = Server::start(Peer::Cairn, dir.path(), &[]);
    let mut raw = Raw::attached(&server);
    // 300 fids walked and opened, all held at once, then each read.
    for i in 0..300u32 {
        let name = format!("f{i:03}");
        assert_eq!(raw.walk(0, 1000 + i, &[&name]), None, "walk {name}");
        raw.expect_ok(&Tmessage::Lopen { fid: 1000 + i, flags: 0 });
    }
    for i in (0..300u32).rev() {
        assert_eq!(raw.read_all(1000 + i), format!("file number {i}").into_bytes());
    }
    for i in 0..300u32 {
        raw.expect_ok(&Tmessage::Clunk { fid: 1000 + i });
    }
    assert!(raw.errno_of(&Tmessage::Clunk { fid: 1000 }).is_some(), "clunked fids are gone");
}
