//! Garbage in: random messages never make the session panic, every reply it sends decodes,
//! and a session that is still up afterwards still answers.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::harness::{run, TestClient};
use super::plan9::frame;
use crate::codec::{decode_rmessage, mtype, Dialect, Rmessage, Tmessage, NOTAG};

/// Whether `bytes` is a reply of either dialect.
fn decodes(bytes: &[u8]) -> bool {
    decode_rmessage(bytes, Dialect::P2000, u32::MAX).is_ok()
        || decode_rmessage(bytes, Dialect::P2000L, u32::MAX).is_ok()
}

/// Message types worth aiming at: every request of both dialects and a few others.
fn any_type() -> impl Strategy<Value = u8> {
    use mtype::*;
    prop_oneof![
        4 => prop::sample::select(alloc::vec![
            TSTATFS, TLOPEN, TLCREATE, TSYMLINK, TMKNOD, TRENAME, TREADLINK, TGETATTR,
            TSETATTR, TXATTRWALK, TXATTRCREATE, TREADDIR, TFSYNC, TLOCK, TGETLOCK, TLINK,
            TMKDIR, TRENAMEAT, TUNLINKAT, TVERSION, TAUTH, TATTACH, TFLUSH, TWALK, TOPEN,
            TCREATE, TREAD, TWRITE, TCLUNK, TREMOVE, TSTAT, TWSTAT,
        ]),
        1 => any::<u8>(),
    ]
}

/// A body: usually a small fid the session knows, then random bytes.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    (prop_oneof![3 => 0u32..4, 1 => any::<u32>()], prop::collection::vec(any::<u8>(), 0..48))
        .prop_map(|(fid, rest)| {
            let mut body = fid.to_le_bytes().to_vec();
            body.extend(rest);
            body
        })
}

/// Runs `messages` against a fresh session with fid 0 at the root, fid 1 at `/hello`
/// (open) and fid 2 at `/blocking` (open, one read waiting), then checks the aftermath.
fn survive(dialect: Dialect, messages: Vec<Vec<u8>>) {
    run(async move {
        let c = TestClient::start(dialect).await;
        c.walk(0, 1, &["hello"]).await;
        c.open(1, 2).await;
        c.walk(0, 2, &["blocking"]).await;
        c.open(2, 2).await;
        c.send(500, &Tmessage::Read { fid: 2, offset: 0, count: 8 });
        for message in messages {
            c.send_raw(message);
            c.settle().await;
            for reply in c.take_replies() {
                assert!(decodes(&reply.bytes), "undecodable reply {:?}", reply.bytes);
            }
            if c.finished() {
                return;
            }
        }
        c.fs.release();
        c.settle().await;
        for reply in c.take_replies() {
            assert!(decodes(&reply.bytes), "undecodable reply {:?}", reply.bytes);
        }
        // Still serving: a Tversion is answered.
        c.send(NOTAG, &Tmessage::Version { msize: 8192, version: "9P2000.L" });
        let reply = c.next_reply().await;
        assert!(matches!(
            decode_rmessage(&reply.bytes, Dialect::P2000L, u32::MAX),
            Ok((NOTAG, Rmessage::Version { .. }))
        ));
        c.hang_up();
        c.settle().await;
        assert!(c.finished());
        assert_eq!(c.fs.live_fids.get(), 0, "every fid clunked at the end");
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn well_framed_garbage_is_answered_and_never_panics(
        l in any::<bool>(),
        messages in prop::collection::vec((any_type(), any::<u16>(), any_body()), 1..24),
    ) {
        let dialect = if l { Dialect::P2000L } else { Dialect::P2000 };
        let messages = messages.into_iter().map(|(ty, tag, body)| frame(ty, tag, &body)).collect();
        survive(dialect, messages);
    }

    #[test]
    fn raw_garbage_closes_or_is_answered_and_never_panics(
        l in any::<bool>(),
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8),
    ) {
        let dialect = if l { Dialect::P2000L } else { Dialect::P2000 };
        survive(dialect, messages);
    }
}

#[test]
fn an_empty_or_short_message_ends_the_connection() {
    for bytes in [Vec::new(), alloc::vec![1, 2, 3], alloc::vec![3, 0, 0, 0, 120, 0, 0]] {
        run(async move {
            let c = TestClient::start(Dialect::P2000L).await;
            c.send_raw(bytes);
            c.settle().await;
            assert!(c.finished());
            assert!(c.take_replies().is_empty());
        });
    }
}
