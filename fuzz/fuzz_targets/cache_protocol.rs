//! Fuzzes cairn-cache's text-protocol parser as a connection drives it: parse, drop what was
//! consumed, swallow what an error says to swallow, stop at a close or when more bytes are
//! needed; checks the parser's contract at every step, and that a prefix holding a whole
//! request parses to that same request.
#![no_main]

use cairn_cache::protocol::{parse, Limits, Parsed, Request};
use libfuzzer_sys::fuzz_target;

/// What a connection did with `input`: each request, each reply, and where it stopped.
enum Step {
    Request,
    Reply(&'static [u8]),
    Close,
}

fn drive(input: &[u8], limits: &Limits) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut at = 0;
    // Each step consumes at least one byte, so this ends.
    while at < input.len() {
        let rest = &input[at..];
        match parse(rest, limits) {
            Parsed::Request { request, consumed } => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "consumed {consumed} of {}",
                    rest.len()
                );
                if let Request::Get { keys, .. } = &request {
                    assert!(keys.iter().all(|k| !k.is_empty() && k.len() <= limits.max_key_len));
                }
                if let Some(key) = request.key() {
                    assert!(!key.is_empty() && key.len() <= limits.max_key_len);
                }
                steps.push(Step::Request);
                at += consumed;
            }
            Parsed::Incomplete => {
                // Only a partial line or data block may wait, and never beyond the bounds.
                assert!(
                    rest.len()
                        <= limits.max_get_line.max(limits.max_line) + limits.max_item_size + 2
                );
                break;
            }
            Parsed::Invalid { reply, consumed, swallow, close, .. } => {
                assert!(consumed > 0 && consumed <= rest.len());
                assert!(reply.is_empty() || reply.ends_with(b"\r\n"));
                steps.push(Step::Reply(reply));
                at += consumed;
                at = at.saturating_add(swallow).min(input.len());
                if close {
                    steps.push(Step::Close);
                    break;
                }
            }
        }
    }
    steps
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the limits: memcached's, or small ones that reach the size checks.
    let (limits, input) = match data.split_first() {
        Some((&pick, rest)) if pick & 1 == 1 => {
            (Limits { max_item_size: 128, max_key_len: 250, max_line: 32, max_get_line: 256 }, rest)
        }
        Some((_, rest)) => (Limits::default(), rest),
        None => return,
    };
    let whole = drive(input, &limits);
    // A request parsed from a prefix is the one parsed from the whole input.
    if let Parsed::Request { request, consumed } = parse(input, &limits) {
        for end in [consumed, input.len()] {
            match parse(&input[..end], &limits) {
                Parsed::Request { request: again, consumed: used } => {
                    assert_eq!((again, used), (request.clone(), consumed));
                }
                other => panic!("prefix of {end} bytes: {other:?}"),
            }
        }
    }
    // Replies are memcached's: one line each, or silence.
    for step in &whole {
        if let Step::Reply(reply) = step {
            assert!(reply.iter().filter(|&&b| b == b'\n').count() <= 1);
        }
    }
});
