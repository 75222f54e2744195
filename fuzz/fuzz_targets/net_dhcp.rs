//! cairn-net's DHCP message parser (RFC 2131/2132) on arbitrary bytes: it must never panic or
//! read past the input, and whatever it accepts must emit and parse back to the same message.
#![no_main]

use cairn_net::dhcp::DhcpRepr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(repr) = DhcpRepr::parse(data) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out);
    let again = DhcpRepr::parse(&out).expect("an emitted message parses");
    assert_eq!(again, repr, "emit then parse changed the message");
});
