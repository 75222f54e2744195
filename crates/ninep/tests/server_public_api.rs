//! The server framework as another crate uses it: a synthetic file server written against the
//! public [`FileServer`] trait, a transport written against the public [`Transport`] trait,
//! and [`serve`] spawned as a task on a cairn core.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use cairn_9p::codec::{
    decode_rmessage, encode_tmessage, qid_type, Attr, Dialect, Qid, Rmessage, Tmessage, WalkList,
    NOFID, NONUNAME, NOTAG,
};
use cairn_9p::errno::{Errno, ENOENT, ENOTDIR};
use cairn_9p::server::{
    dtype, serve_with_stats, Credentials, DirEntry, FileServer, ServerConfig, SessionStats,
};
use cairn_9p::transport::{Transport, TransportError};
use cairn_rt::event::{spawn_local, yield_now, Runtime};
use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};
use cairn_rt::percore::{CoreGuard, CoreId};
use cairn_rt::platform::Platform;

/// `/` holding one file, `motd`.
struct Motd;

impl FileServer for Motd {
    type Fid = bool; // true: the file; false: the root

    fn attach(&self, _aname: &str, _who: &Credentials) -> Result<bool, Errno> {
        Ok(false)
    }
    fn qid(&self, fid: &bool) -> Qid {
        if *fid {
            Qid { ty: qid_type::QTFILE, version: 0, path: 2 }
        } else {
            Qid { ty: qid_type::QTDIR, version: 0, path: 1 }
        }
    }
    fn walk(&self, dir: &bool, name: &str) -> Result<bool, Errno> {
        match (dir, name) {
            (true, _) => Err(ENOTDIR),
            (false, "motd") => Ok(true),
            (false, "..") => Ok(false),
            _ => Err(ENOENT),
        }
    }
    fn clone_fid(&self, fid: &bool) -> Result<bool, Errno> {
        Ok(*fid)
    }
    fn open(&self, fid: &bool, _flags: u32) -> Result<(Qid, u32), Errno> {
        Ok((self.qid(fid), 0))
    }
    async fn read(&self, _fid: &bool, offset: u64, count: u32) -> Result<IoBuf, Errno> {
        let text: &[u8] = b"welcome to cairn\n";
        let start = (offset as usize).min(text.len());
        let end = (start + count as usize).min(text.len());
        Ok(IoBuf::from_vec(text[start..end].to_vec()))
    }
    fn readdir(&self, _fid: &bool, offset: u64, max: usize) -> Result<Vec<DirEntry>, Errno> {
        let entry =
            DirEntry { qid: self.qid(&true), offset: 1, kind: dtype::DT_REG, name: "motd".into() };
        Ok(if offset == 0 && max > 0 { vec![entry] } else { vec![] })
    }
    fn getattr(&self, fid: &bool) -> Result<Attr, Errno> {
        let mode = if *fid { 0o100_444 } else { 0o040_555 };
        Ok(Attr { qid: self.qid(fid), mode, size: if *fid { 17 } else { 0 }, ..Attr::default() })
    }
}

/// Two queues and a waker.
#[derive(Default)]
struct Pipe {
    to_server: RefCell<VecDeque<SharedIoBuf>>,
    to_client: RefCell<VecDeque<IoBufChain>>,
    waker: RefCell<Option<Waker>>,
    hung_up: Cell<bool>,
}

impl Transport for Pipe {
    async fn recv(&self) -> Result<Option<SharedIoBuf>, TransportError> {
        std::future::poll_fn(|cx| {
            if let Some(m) = self.to_server.borrow_mut().pop_front() {
                Poll::Ready(Ok(Some(m)))
            } else if self.hung_up.get() {
                Poll::Ready(Ok(None))
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
    fn send(&self, message: IoBufChain) -> Result<(), TransportError> {
        self.to_client.borrow_mut().push_back(message);
        Ok(())
    }
    fn set_msize(&self, _msize: u32) {}
    fn close(&self) {
        self.hung_up.set(true);
    }
}

impl Pipe {
    fn push(&self, tag: u16, msg: &Tmessage<'_>, dialect: Dialect) {
        let mut out = Vec::new();
        encode_tmessage(tag, msg, dialect, 8192, &mut out).unwrap();
        self.to_server.borrow_mut().push_back(SharedIoBuf::from_vec(out));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    async fn reply(&self) -> Vec<u8> {
        for _ in 0..1000 {
            if let Some(chain) = self.to_client.borrow_mut().pop_front() {
                return chain.to_vec();
            }
            yield_now().await;
        }
        panic!("no reply");
    }
}

struct OneCore;

impl Platform for OneCore {
    fn core_count(&self) -> usize {
        1
    }
    fn now_ns(&self) -> u64 {
        0
    }
    fn poll_devices(&self) -> usize {
        0
    }
    fn block(&self, _deadline_ns: Option<u64>) {
        std::thread::sleep(Duration::from_micros(50));
    }
    fn wake(&self, _core: CoreId) {}
}

static PLATFORM: OneCore = OneCore;

#[test]
fn a_synthetic_file_server_is_served_over_a_custom_transport() {
    let _core = CoreGuard::enter(0);
    let em = Runtime::new(&PLATFORM).start_core();
    em.block_on(async {
        let pipe = Rc::new(Pipe::default());
        let stats = Rc::new(SessionStats::new());
        let config = ServerConfig { max_msize: 8192 };
        let session =
            spawn_local(serve_with_stats(Rc::new(Motd), pipe.clone(), config, stats.clone()));
        let l = Dialect::P2000L;
        pipe.push(NOTAG, &Tmessage::Version { msize: 65536, version: "9P2000.L" }, l);
        let r = pipe.reply().await;
        assert_eq!(
            decode_rmessage(&r, l, 8192).unwrap().1,
            Rmessage::Version { msize: 8192, version: "9P2000.L" }
        );
        let attach = Tmessage::Attach {
            fid: 0,
            afid: NOFID,
            uname: "u",
            aname: "",
            n_uname: Some(NONUNAME),
        };
        pipe.push(1, &attach, l);
        assert!(matches!(
            decode_rmessage(&pipe.reply().await, l, 8192).unwrap().1,
            Rmessage::Attach { .. }
        ));
        let names = WalkList::from_slice(&["motd"]).unwrap();
        pipe.push(2, &Tmessage::Walk { fid: 0, newfid: 1, names }, l);
        assert!(matches!(
            decode_rmessage(&pipe.reply().await, l, 8192).unwrap().1,
            Rmessage::Walk { .. }
        ));
        pipe.push(3, &Tmessage::Lopen { fid: 1, flags: 0 }, l);
        assert!(matches!(
            decode_rmessage(&pipe.reply().await, l, 8192).unwrap().1,
            Rmessage::Lopen { .. }
        ));
        pipe.push(4, &Tmessage::Read { fid: 1, offset: 11, count: 100 }, l);
        let r = pipe.reply().await;
        assert_eq!(decode_rmessage(&r, l, 8192).unwrap(), (4, Rmessage::Read { data: b"cairn\n" }));
        pipe.push(5, &Tmessage::Clunk { fid: 1 }, l);
        assert_eq!(decode_rmessage(&pipe.reply().await, l, 8192).unwrap(), (5, Rmessage::Clunk));
        pipe.hung_up.set(true);
        if let Some(w) = pipe.waker.borrow_mut().take() {
            w.wake();
        }
        session.await;
        let counters = stats.snapshot();
        assert_eq!((counters.requests, counters.errors, counters.bytes_read), (6, 0, 6));
    });
}
