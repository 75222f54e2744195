//! Version negotiation (version(5)).

use super::harness::{run, TestClient};
use crate::codec::{Dialect, Rmessage, Tmessage, NOFID, NOTAG};
use crate::server::ServerConfig;

#[test]
fn version_settles_9p2000_l_and_the_smaller_msize() {
    run(async {
        let mut c = TestClient::start_raw(Dialect::P2000L, 65536);
        assert_eq!(c.version(8192, "9P2000.L").await, (8192, "9P2000.L".into()));
        assert_eq!(c.transport_msize(), 8192);
        // A client offering more than the server's maximum gets the maximum.
        assert_eq!(c.version(1 << 30, "9P2000.L").await, (65536, "9P2000.L".into()));
        assert_eq!(c.transport_msize(), 65536);
    });
}

#[test]
fn version_answers_9p2000_to_plain_and_dotted_versions() {
    run(async {
        let mut c = TestClient::start_raw(Dialect::P2000, ServerConfig::default().max_msize);
        assert_eq!(c.version(8192, "9P2000").await, (8192, "9P2000".into()));
        assert_eq!(c.version(8192, "9P2000.u").await, (8192, "9P2000".into()));
        assert_eq!(c.version(8192, "9P2010").await, (8192, "9P2000".into()));
        assert_eq!(ServerConfig::default().max_msize, (1 << 20) + 24);
    });
}

#[test]
fn unknown_version_is_answered_unknown_and_later_requests_are_refused() {
    run(async {
        let mut c = TestClient::start_raw(Dialect::P2000, 8192);
        assert_eq!(c.version(8192, "NFSv4").await.1, "unknown");
        // Too small an msize is not understood either.
        assert_eq!(c.version(100, "9P2000").await.1, "unknown");
        let attach = Tmessage::Attach { fid: 0, afid: NOFID, uname: "u", aname: "", n_uname: None };
        let reply = c.call(1, &attach).await;
        assert_eq!(reply.error().unwrap().0, "version not negotiated");
        assert!(!c.finished(), "the session stays up");
    });
}

#[test]
fn requests_before_version_are_refused() {
    run(async {
        let c = TestClient::start_raw(Dialect::P2000, 8192);
        let reply = c.call(5, &Tmessage::Clunk { fid: 0 }).await;
        assert!(matches!(reply.msg().1, Rmessage::Error { .. }));
        assert_eq!(c.stats.snapshot().errors, 1);
    });
}

#[test]
fn a_second_version_clunks_every_fid_and_drops_outstanding_requests() {
    run(async {
        let mut c = TestClient::start(Dialect::P2000L).await;
        c.walk(0, 1, &["blocking"]).await;
        c.walk(0, 2, &["hello"]).await;
        c.open(1, 0).await;
        c.send(9, &Tmessage::Read { fid: 1, offset: 0, count: 10 });
        c.settle().await;
        assert!(c.take_replies().is_empty(), "the read waits");
        assert_eq!(c.fs.live_fids.get(), 3);
        let reply = c.call(NOTAG, &Tmessage::Version { msize: 4096, version: "9P2000.L" }).await;
        assert!(matches!(reply.msg().1, Rmessage::Version { msize: 4096, .. }));
        c.settle().await;
        // No reply ever comes for the dropped read; its future was dropped.
        assert!(c.take_replies().is_empty());
        assert_eq!(c.fs.cancelled.get(), 1);
        assert_eq!(c.fs.live_fids.get(), 0, "every fid clunked");
        assert_eq!(c.stats.snapshot().cancelled, 1);
        c.msize = 4096;
        let reply = c.call(2, &Tmessage::Clunk { fid: 0 }).await;
        assert_eq!(reply.error().unwrap().1, crate::errno::EBADF);
    });
}

#[test]
fn end_of_connection_clunks_fids_cancels_requests_and_closes() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        c.walk(0, 1, &["blocking"]).await;
        c.open(1, 0).await;
        c.send(3, &Tmessage::Read { fid: 1, offset: 0, count: 10 });
        c.settle().await;
        c.hang_up();
        c.settle().await;
        assert!(c.finished());
        assert!(c.closed());
        assert_eq!(c.fs.cancelled.get(), 1);
        assert_eq!(c.fs.live_fids.get(), 0);
    });
}
