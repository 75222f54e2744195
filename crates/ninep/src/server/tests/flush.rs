//! `Tflush` (flush(5)) and requests in flight.

use alloc::collections::BTreeSet;

use super::harness::{run, TestClient};
use crate::codec::{Dialect, Rmessage, Tmessage};
use crate::errno::{EBUSY, EINTR, EINVAL};

/// Opens `/blocking` as fid 1 and starts a read of it under `tag`, which waits.
async fn blocked_read(c: &TestClient, tag: u16) {
    c.walk(0, 1, &["blocking"]).await;
    c.open(1, 2).await;
    c.send(tag, &Tmessage::Read { fid: 1, offset: 0, count: 100 });
    c.settle().await;
    assert!(c.take_replies().is_empty(), "the read waits");
}

#[test]
fn flush_of_a_waiting_read_answers_it_eintr_then_rflush() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        blocked_read(&c, 10).await;
        c.send(11, &Tmessage::Flush { oldtag: 10 });
        c.settle().await;
        let replies = c.take_replies();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].tag(), 10);
        assert_eq!(replies[0].msg().1, Rmessage::Lerror { ecode: EINTR });
        assert_eq!(replies[1].msg(), (11, Rmessage::Flush));
        assert_eq!(c.fs.cancelled.get(), 1, "the read's future was dropped");
        // Releasing the file afterwards produces nothing more.
        c.fs.release();
        c.settle().await;
        assert!(c.take_replies().is_empty());
        let s = c.stats.snapshot();
        assert_eq!((s.flushes, s.cancelled), (1, 1));
    });
}

#[test]
fn flush_in_9p2000_answers_interrupted_then_rflush() {
    run(async {
        let c = TestClient::start(Dialect::P2000).await;
        blocked_read(&c, 3).await;
        c.send(4, &Tmessage::Flush { oldtag: 3 });
        c.settle().await;
        let replies = c.take_replies();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].msg(), (3, Rmessage::Error { ename: "interrupted" }));
        assert_eq!(replies[1].msg(), (4, Rmessage::Flush));
    });
}

#[test]
fn flush_of_a_waiting_write_cancels_it() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        c.walk(0, 1, &["blocking"]).await;
        c.open(1, 1).await;
        c.send(20, &Tmessage::Write { fid: 1, offset: 0, data: b"abc" });
        c.settle().await;
        assert!(c.take_replies().is_empty());
        c.send(21, &Tmessage::Flush { oldtag: 20 });
        let first = c.next_reply().await;
        assert_eq!(first.msg(), (20, Rmessage::Lerror { ecode: EINTR }));
        assert_eq!(c.next_reply().await.msg(), (21, Rmessage::Flush));
        assert_eq!(c.fs.cancelled.get(), 1);
    });
}

#[test]
fn flush_of_an_unknown_or_answered_tag_is_a_plain_rflush() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        assert_eq!(c.call(7, &Tmessage::Flush { oldtag: 1234 }).await.msg().1, Rmessage::Flush);
        c.walk(0, 1, &["hello"]).await;
        c.open(1, 0).await;
        c.send(8, &Tmessage::Read { fid: 1, offset: 0, count: 5 });
        c.settle().await;
        let read = c.next_reply().await;
        assert_eq!(read.msg(), (8, Rmessage::Read { data: b"hello" }));
        assert_eq!(c.call(9, &Tmessage::Flush { oldtag: 8 }).await.msg().1, Rmessage::Flush);
        assert_eq!(c.stats.snapshot().cancelled, 0);
    });
}

#[test]
fn a_tag_already_in_flight_is_refused() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        blocked_read(&c, 30).await;
        let reply = c.call(30, &Tmessage::Clunk { fid: 0 }).await;
        assert_eq!(reply.error().unwrap().1, EINVAL);
        // The fid was not clunked, and the first request is still waiting.
        c.walk(0, 5, &[]).await;
        c.fs.release();
        let read = c.next_reply().await;
        assert_eq!(read.msg(), (30, Rmessage::Read { data: b"released" }));
    });
}

#[test]
fn many_requests_wait_at_once_and_inline_requests_pass_them() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        c.walk(0, 1, &["blocking"]).await;
        c.open(1, 2).await;
        for tag in 100..150u16 {
            c.send(tag, &Tmessage::Read { fid: 1, offset: 0, count: 64 });
        }
        for tag in 150..160u16 {
            c.send(tag, &Tmessage::Write { fid: 1, offset: 0, data: b"x" });
        }
        c.settle().await;
        assert!(c.take_replies().is_empty());
        // Quick requests are answered while the others wait.
        let qids = c.walk(0, 2, &["hello"]).await;
        assert_eq!(qids.len(), 1);
        assert_eq!(c.stats.snapshot().in_flight_peak, 60);
        c.fs.release();
        c.settle().await;
        let replies = c.take_replies();
        let tags: BTreeSet<u16> = replies.iter().map(|r| r.tag()).collect();
        assert_eq!(tags, (100..160).collect());
        for r in &replies {
            match r.msg() {
                (t, Rmessage::Read { data }) if t < 150 => assert_eq!(data, b"released"),
                (t, Rmessage::Write { count: 1 }) if t >= 150 => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let s = c.stats.snapshot();
        assert_eq!((s.bytes_read, s.bytes_written), (50 * 8, 10));
    });
}

#[test]
fn clunk_while_a_read_waits_defers_the_file_servers_clunk() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        blocked_read(&c, 40).await;
        let clunks = c.fs.clunks.get();
        c.clunk(1).await;
        assert_eq!(c.fs.clunks.get(), clunks, "the waiting read still holds the fid");
        c.fs.release();
        let read = c.next_reply().await;
        assert_eq!(read.msg(), (40, Rmessage::Read { data: b"released" }));
        c.settle().await;
        assert_eq!(c.fs.clunks.get(), clunks + 1);
    });
}

#[test]
fn remove_of_a_fid_a_request_still_uses_is_busy_and_clunks_it() {
    run(async {
        let c = TestClient::start(Dialect::P2000L).await;
        blocked_read(&c, 50).await;
        let reply = c.call(51, &Tmessage::Remove { fid: 1 }).await;
        assert_eq!(reply.error().unwrap().1, EBUSY);
        assert!(c.fs.exists(&["blocking"]));
        // The fid is gone regardless (remove(5)).
        let reply = c.call(52, &Tmessage::Clunk { fid: 1 }).await;
        assert!(reply.error().is_some());
    });
}
