//! cairn's TCP on arbitrary segments: a stack with a listener, an established connection and a
//! connection being opened is fed segments made of fuzzer bytes (any flags, sequence and
//! acknowledgement numbers, options and payload) from the peer's address, with time moving
//! forward between them. Nothing may panic and the stack's invariants must hold after every
//! segment (RFC 9293 3.10.7 processes any segment in any state).
#![no_main]

use cairn_net::tcp::{TcpConfig, TcpStack};
use cairn_net::wire::Ipv4Address;
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};
use libfuzzer_sys::fuzz_target;

const LOCAL: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const PEER: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    let config = TcpConfig { checksum_offload: true, ..TcpConfig::default() };
    let mut stack = TcpStack::new(config);
    let listener = stack.listen(LOCAL, 80, 4).expect("listen");
    let opened = stack.connect(0, LOCAL, 0, PEER, 8080).expect("connect");
    let mut now = 1_000_000u64;
    let mut sink = |_: Ipv4Address, _: Ipv4Address, _: IoBufChain, _: u16| {};
    stack.dispatch(now, &mut sink);

    // Each segment: 1 byte of length, 1 byte of time step, then that many bytes.
    let mut rest = data;
    while rest.len() >= 2 {
        let len = rest[0] as usize;
        let step = rest[1] as u64;
        rest = &rest[2..];
        let take = len.min(rest.len());
        let (segment, tail) = rest.split_at(take);
        rest = tail;
        now += step * 1_000_000;
        stack.input(now, PEER, LOCAL, SharedIoBuf::copy_from_slice(segment));
        stack.on_timer(now);
        stack.dispatch(now, &mut sink);
        while stack.poll_event().is_some() {}
        if let Some(conn) = stack.accept(listener) {
            let _ = stack.send(conn, SharedIoBuf::copy_from_slice(b"hello"));
            while stack.recv(conn).is_some() {}
        }
        while stack.recv(opened).is_some() {}
        stack.check_invariants().expect("TCP invariants");
    }
});
