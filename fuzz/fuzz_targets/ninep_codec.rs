//! The 9P codec on arbitrary bytes: decoding never panics in either dialect, and whatever
//! decodes re-encodes to a message that decodes to the same thing.
#![no_main]

use cairn_9p::codec::{
    decode_rmessage, decode_tmessage, encode_rmessage, encode_tmessage, frame_len, Dialect,
};
use libfuzzer_sys::fuzz_target;

const MSIZE: u32 = 65536;

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    for dialect in [Dialect::P2000, Dialect::P2000L] {
        if let Ok((tag, msg)) = decode_tmessage(data, dialect, MSIZE) {
            let mut out = Vec::new();
            encode_tmessage(tag, &msg, dialect, MSIZE, &mut out).expect("a decoded T re-encodes");
            let (tag2, msg2) = decode_tmessage(&out, dialect, MSIZE).expect("re-decodes");
            assert_eq!((tag, &msg), (tag2, &msg2));
        }
        if let Ok((tag, msg)) = decode_rmessage(data, dialect, MSIZE) {
            let mut out = Vec::new();
            encode_rmessage(tag, &msg, dialect, MSIZE, &mut out).expect("a decoded R re-encodes");
            let (tag2, msg2) = decode_rmessage(&out, dialect, MSIZE).expect("re-decodes");
            assert_eq!((tag, &msg), (tag2, &msg2));
        }
    }
});
