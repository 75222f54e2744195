//! The parser of memcached's text protocol: bytes from a connection in, one [`Request`] (or
//! the exact error reply memcached would send) out.
//!
//! It follows memcached's `protocol.txt` (the storage, retrieval, deletion, arithmetic, touch,
//! "get and touch", slab-independent statistics and other commands, and the "Meta Commands"
//! section) and, where `protocol.txt` is silent, what memcached 1.6.18 answers. Every error
//! reply, token-count rule, number syntax and limit here was checked against a running
//! memcached 1.6.18; the unit tests quote the exchanges.
//!
//! # Contract
//!
//! [`parse`] looks at the start of the connection's unread bytes and returns:
//!
//! - [`Parsed::Request`]: a complete request (command line and, for storage commands, its
//!   data block), borrowing keys and data from the input, and how many bytes it used;
//! - [`Parsed::Incomplete`]: keep the bytes and read more;
//! - [`Parsed::Invalid`]: memcached's reply to a bad request, how many bytes to drop, how many
//!   more to discard as they arrive (a data block that will not be stored), and whether to
//!   close the connection.
//!
//! It never panics, never allocates in proportion to a length the peer announces (a data
//! block is only looked at once all of it is in the input, and one larger than
//! [`Limits::max_item_size`] is swallowed, never buffered), and costs time linear in the
//! bytes it looks at: at most [`Limits::max_get_line`] bytes of line, plus one bounded data
//! block.
//!
//! # memcached's syntax, as implemented
//!
//! - A line ends at the first `\n`; one `\r` before it is dropped. As in memcached (which
//!   handles lines as C strings) the line ends at its first NUL byte.
//! - Tokens are separated by one or more spaces (only `' '`: a tab is part of a token).
//!   memcached looks at the first 23 tokens of a line; further tokens are only read by
//!   `get`-style commands (as more keys), so "too many tokens" errors follow its counts.
//! - Numbers are read as memcached reads them with `strtoul`/`strtol` on a 64-bit machine:
//!   leading C white space and a sign are accepted, the number must end the token (or be
//!   followed by C white space), and 32-bit fields keep the low 32 bits of the 64-bit value
//!   (`set k 4294967297 0 1` stores flags 1).
//! - Keys are at most [`Limits::max_key_len`] bytes. `protocol.txt` says a key must not hold
//!   control characters, but memcached 1.6.18 does not check, and clients depend on that:
//!   memcaslap (libmemcached's load generator) starts every key with eight 0x10 bytes. cairn
//!   accepts what memcached accepts, so those clients switch by changing a port.
//! - `noreply` is the last token of a classic command; when present, memcached also stays
//!   silent about that command's syntax errors, so the [`Parsed::Invalid`] reply is empty.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::request::{GetKind, MetaFlag, MetaFlags, Request, StoreKind};
use crate::cnum::{c_strtol, c_strtoul, c_strtoull};

/// The bounds the parser enforces. The defaults are memcached 1.6's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// memcached's `-I` (item size limit, default 1 MiB). A stored item is too large when
    /// memcached's item of it would be: see [`Limits::item_fits`].
    pub max_item_size: usize,
    /// The longest key in bytes (memcached's `KEY_MAX_LENGTH`, 250). A meta command's base64
    /// key is measured before decoding, as memcached does.
    pub max_key_len: usize,
    /// How many bytes may wait without a newline before the connection is closed (memcached:
    /// 2048). `get`/`gets` lines are the exception: see [`Limits::max_get_line`].
    pub max_line: usize,
    /// The longest `get`/`gets` line (many keys). memcached lets these grow without bound;
    /// cairn closes the connection once this many bytes hold no newline. Default 1 MiB, about
    /// 4000 keys of 250 bytes.
    pub max_get_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_item_size: 1024 * 1024,
            max_key_len: 250,
            max_line: 2048,
            max_get_line: 1024 * 1024,
        }
    }
}

/// memcached's item header on a 64-bit machine: `sizeof(item)`.
const ITEM_HEADER: usize = 48;
/// The cas unique memcached stores with every item (it runs with cas enabled by default).
const ITEM_CAS: usize = 8;

impl Limits {
    /// Whether memcached would store an item with this key length, client flags and data
    /// length under an item size limit of [`Limits::max_item_size`] (its `item_size_ok`):
    /// a 48-byte header, the key and a NUL, 4 bytes of client flags unless they are 0, the
    /// data and its `\r\n`, and an 8-byte cas must fit. With the default 1 MiB limit and a
    /// one-byte key, the largest value is 1048516 bytes (measured on memcached 1.6.18).
    pub fn item_fits(&self, key_len: usize, flags: u32, data_len: usize) -> bool {
        let flags_len = if flags == 0 { 0 } else { 4 };
        let total = ITEM_HEADER
            .saturating_add(key_len)
            .saturating_add(1)
            .saturating_add(flags_len)
            .saturating_add(data_len)
            .saturating_add(2)
            .saturating_add(ITEM_CAS);
        total <= self.max_item_size
    }
}

/// What [`parse`] found at the start of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A complete request and how many input bytes it used (line + data block).
    Request {
        /// The request, borrowing from the input.
        request: Request<'a>,
        /// Bytes used, from the start of the input.
        consumed: usize,
    },
    /// No complete request in the input yet: keep the bytes and read more.
    Incomplete,
    /// A bad request. The connection writes `reply`, drops `consumed` input bytes, then
    /// discards the next `swallow` bytes as they arrive (a data block that will not be
    /// stored), and closes the connection if `close` (after writing `reply`).
    Invalid {
        /// memcached's exact reply, `\r\n` included; empty where memcached stays silent
        /// (`noreply`, or a connection it closes without a word).
        reply: &'static [u8],
        /// Bytes to drop from the start of the input.
        consumed: usize,
        /// Bytes to discard after those, as they arrive (they may not be in the input yet).
        swallow: usize,
        /// Close the connection after writing `reply`.
        close: bool,
        /// A key whose present item the executor must delete before carrying on: memcached
        /// unlinks the old item when a `set` or `ms` is refused as too large, so that a stale
        /// value does not outlive a failed overwrite. `None` otherwise.
        unlink: Option<Cow<'a, [u8]>>,
    },
}

/// memcached's replies to bad requests, byte for byte.
pub mod reply {
    /// Unknown command, wrong token count, empty line.
    pub const ERROR: &[u8] = b"ERROR\r\n";
    /// Bad key, bad number, bad meta syntax.
    pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
    /// `delete` with a token other than `0` / `noreply` after the key.
    pub const BAD_DELETE: &[u8] =
        b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    /// The data block does not end with `\r\n`.
    pub const BAD_DATA_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
    /// The item would exceed the item size limit.
    pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
    /// `incr`/`decr` with a delta that is not a 64-bit unsigned number.
    pub const BAD_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
    /// `touch`, `gat`, `gats`, `flush_all` with a bad time.
    pub const BAD_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument\r\n";
    /// `shutdown`, which memcached only obeys when started with `-A`.
    pub const SHUTDOWN_DISABLED: &[u8] = b"ERROR: shutdown not enabled\r\n";
    /// Meta: a flag given twice (or a flag byte above 126).
    pub const DUPLICATE_FLAG: &[u8] = b"CLIENT_ERROR duplicate flag\r\n";
    /// Meta: an unknown flag.
    pub const INVALID_FLAG: &[u8] = b"CLIENT_ERROR invalid flag\r\n";
    /// `md`, `ma`: any flag error.
    pub const INVALID_OR_DUPLICATE_FLAG: &[u8] = b"CLIENT_ERROR invalid or duplicate flag\r\n";
    /// Meta: a bad number after `N`, `T`, `R` or `C`.
    pub const BAD_TOKEN: &[u8] = b"CLIENT_ERROR bad token in command line format\r\n";
    /// Meta: `M` not followed by exactly one character.
    pub const BAD_M_LENGTH: &[u8] = b"CLIENT_ERROR incorrect length for M token\r\n";
    /// Meta: a bad number after `J`.
    pub const BAD_INITIAL: &[u8] = b"CLIENT_ERROR invalid numeric initial value\r\n";
    /// Meta: a bad number after `D`.
    pub const BAD_DELTA_FLAG: &[u8] = b"CLIENT_ERROR invalid numeric delta value\r\n";
    /// Meta: the `b` flag with a key that is not base64.
    pub const BAD_BASE64_KEY: &[u8] = b"CLIENT_ERROR error decoding key\r\n";
    /// Meta: an `O` token longer than 32 bytes (letter included).
    pub const OPAQUE_TOO_LONG: &[u8] = b"CLIENT_ERROR opaque token too long\r\n";
    /// `mg` with 18 flags or more.
    pub const MG_TOO_MANY_FLAGS: &[u8] = b"CLIENT_ERROR options flags are too long\r\n";
    /// `ms`, `md`, `ma` with too many flags (17 for `ms`, 18 for the others).
    pub const TOO_MANY_FLAGS: &[u8] = b"CLIENT_ERROR options flags too long\r\n";
    /// `ms` with an `M` mode other than `E A P R S`.
    pub const BAD_MS_MODE: &[u8] = b"CLIENT_ERROR invalid mode for ms M token\r\n";
    /// `ma` with an `M` mode other than `I + D -`.
    pub const BAD_MA_MODE: &[u8] = b"CLIENT_ERROR invalid mode for ma M token\r\n";
}

/// The most tokens memcached's tokenizer looks at in one pass (`MAX_TOKENS` - 1).
const MAX_TOKENS: usize = 23;
/// memcached answers "options flags too long" once a meta line has this many tokens
/// (`ntokens > MFLAG_MAX_OPT_LENGTH`, its count including a terminal token).
const META_MAX_TOKENS: usize = 20;
/// The longest `O` token, letter included (`MFLAG_MAX_OPAQUE_LENGTH`).
const MAX_OPAQUE: usize = 32;
/// How many leading spaces memcached skips when deciding whether a long line is a `get`.
const GET_LEADING_SPACES: usize = 100;

/// Parses the first request in `input`, as memcached 1.6 would. See the module doc.
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let scan = &input[..input.len().min(limits.max_get_line.max(limits.max_line))];
    let Some(newline) = scan.iter().position(|&b| b == b'\n') else {
        return if input.len() <= limits.max_line
            || (is_get_line(input) && input.len() <= limits.max_get_line)
        {
            Parsed::Incomplete
        } else {
            // memcached closes without a word (1.6.18: no "line too long" reply).
            Parsed::Invalid {
                reply: b"",
                consumed: input.len(),
                swallow: 0,
                close: true,
                unlink: None,
            }
        };
    };
    let consumed = newline + 1;
    let mut line = &input[..newline];
    if line.len() > 1 && line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    if let Some(nul) = line.iter().position(|&b| b == 0) {
        line = &line[..nul];
    }
    Command { line: Line::new(line), input, consumed, limits }.parse()
}

/// Whether a line that has no newline yet may grow past [`Limits::max_line`]: memcached
/// allows it for `get ` and `gets ` after at most 100 leading spaces.
fn is_get_line(input: &[u8]) -> bool {
    let spaces = input.iter().take_while(|&&b| b == b' ').count();
    let rest = &input[spaces..];
    spaces <= GET_LEADING_SPACES && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
}

/// The first [`MAX_TOKENS`] tokens of a line, as memcached's tokenizer sees them.
struct Line<'a> {
    /// The whole line (for commands that read every token).
    text: &'a [u8],
    /// The first tokens.
    tokens: [&'a [u8]; MAX_TOKENS],
    /// How many of `tokens` are set: the line's token count, capped at [`MAX_TOKENS`].
    n: usize,
}

impl<'a> Line<'a> {
    fn new(text: &'a [u8]) -> Self {
        let mut tokens: [&'a [u8]; MAX_TOKENS] = [&[]; MAX_TOKENS];
        let mut n = 0;
        for (slot, token) in tokens.iter_mut().zip(words(text)) {
            *slot = token;
            n += 1;
        }
        Line { text, tokens, n }
    }

    /// Token `i`, or empty past the end.
    fn get(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            self.tokens[i]
        } else {
            &[]
        }
    }

    /// The last token memcached looks at (where it finds `noreply` and `HTTP/`).
    fn last(&self) -> &'a [u8] {
        self.get(self.n.wrapping_sub(1))
    }

    /// memcached's `set_noreply_maybe`: the last token is exactly `noreply`.
    fn noreply(&self) -> bool {
        self.last() == b"noreply"
    }
}

/// The space-separated tokens of `text`.
fn words(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// One command line being turned into a [`Parsed`].
struct Command<'a, 'l> {
    line: Line<'a>,
    input: &'a [u8],
    /// Bytes of the line, newline included.
    consumed: usize,
    limits: &'l Limits,
}

impl<'a> Command<'a, '_> {
    fn request(&self, request: Request<'a>) -> Parsed<'a> {
        Parsed::Request { request, consumed: self.consumed }
    }

    fn invalid(&self, reply: &'static [u8]) -> Parsed<'a> {
        Parsed::Invalid { reply, consumed: self.consumed, swallow: 0, close: false, unlink: None }
    }

    /// An error memcached does not report when the client said `noreply`.
    fn quiet(&self, noreply: bool, reply: &'static [u8]) -> Parsed<'a> {
        self.invalid(if noreply { b"" } else { reply })
    }

    /// Whether a key token is refused: longer than the limit (its bytes are not checked, as
    /// memcached does not check them).
    fn bad_key(&self, key: &[u8]) -> bool {
        key.len() > self.limits.max_key_len
    }

    fn parse(self) -> Parsed<'a> {
        let l = &self.line;
        let cmd = l.get(0);
        if l.n == 0 || cmd.len() < 2 {
            return self.invalid(reply::ERROR);
        }
        // The same dispatch order as memcached's process_command_ascii: it decides which
        // unknown commands get "ERROR" and which are probed for "HTTP/".
        if cmd[0] == b'm' && cmd.len() == 2 {
            return match cmd[1] {
                b'g' => self.meta(MetaCmd::Get),
                b's' => self.meta_set(),
                b'd' => self.meta(MetaCmd::Delete),
                b'a' => self.meta(MetaCmd::Arith),
                b'n' => self.request(Request::MetaNoop),
                b'e' => self.meta_debug(),
                _ => self.invalid(reply::ERROR),
            };
        }
        let first = cmd[0];
        match cmd {
            b"get" | b"bget" => self.get(GetKind::Get),
            b"gets" => self.get(GetKind::Gets),
            b"gat" => self.get(GetKind::Gat),
            b"gats" => self.get(GetKind::Gats),
            b"set" => self.store(StoreKind::Set),
            b"add" => self.store(StoreKind::Add),
            b"replace" => self.store(StoreKind::Replace),
            b"append" => self.store(StoreKind::Append),
            b"prepend" => self.store(StoreKind::Prepend),
            b"cas" => self.store(StoreKind::Cas),
            b"delete" => self.delete(),
            b"incr" => self.arith(true),
            b"decr" => self.arith(false),
            b"touch" => self.touch(),
            b"stats" => self.request(Request::Stats { args: l.tokens[1..l.n].to_vec() }),
            b"shutdown" => self.invalid(reply::SHUTDOWN_DISABLED),
            b"cache_memlimit" => self.memlimit(),
            b"flush_all" => self.flush_all(),
            b"version" => self.request(Request::Version),
            b"quit" => self.request(Request::Quit),
            b"verbosity" => self.verbosity(),
            // memcached's other administrative commands (slabs, lru, lru_crawler, watch,
            // extstore, ...) are not part of cairn's cache: they get "ERROR".
            b"slabs" | b"lru" | b"lru_crawler" | b"watch" | b"extstore" => {
                self.invalid(reply::ERROR)
            }
            _ if matches!(first, b'g' | b's' | b'a' | b'c' | b'i' | b'd' | b't') => {
                self.invalid(reply::ERROR)
            }
            // Someone speaking HTTP to the cache: memcached hangs up.
            _ if l.last().starts_with(b"HTTP/") => Parsed::Invalid {
                reply: b"",
                consumed: self.consumed,
                swallow: 0,
                close: true,
                unlink: None,
            },
            _ => self.invalid(reply::ERROR),
        }
    }

    /// `get|gets <key>*`, `gat|gats <exptime> <key>*`.
    fn get(self, kind: GetKind) -> Parsed<'a> {
        if self.line.n < 2 {
            return self.invalid(reply::ERROR);
        }
        let touch = matches!(kind, GetKind::Gat | GetKind::Gats);
        let mut tokens = words(self.line.text).skip(1);
        let exptime = if touch {
            match tokens.next().and_then(c_strtol) {
                Some(exptime) => Some(i64::from(exptime)),
                None => return self.invalid(reply::BAD_EXPTIME),
            }
        } else {
            None
        };
        let mut keys = Vec::new();
        for key in tokens {
            if self.bad_key(key) {
                return self.invalid(reply::BAD_FORMAT);
            }
            keys.push(key);
        }
        self.request(Request::Get { kind, exptime, keys })
    }

    /// `<set|add|replace|append|prepend> <key> <flags> <exptime> <bytes> [noreply]`,
    /// `cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]`, and the data block.
    fn store(self, kind: StoreKind) -> Parsed<'a> {
        let l = &self.line;
        let is_cas = kind == StoreKind::Cas;
        let wanted = if is_cas { 6..=7 } else { 5..=6 };
        if !wanted.contains(&l.n) {
            return self.invalid(reply::ERROR);
        }
        let noreply = l.noreply();
        let key = l.get(1);
        if self.bad_key(key) {
            return self.quiet(noreply, reply::BAD_FORMAT);
        }
        let (Some(flags), Some(exptime), Some(len)) =
            (c_strtoul(l.get(2)), c_strtol(l.get(3)), c_strtol(l.get(4)))
        else {
            return self.quiet(noreply, reply::BAD_FORMAT);
        };
        let cas = if is_cas {
            match c_strtoull(l.get(5)) {
                Some(cas) => cas,
                None => return self.quiet(noreply, reply::BAD_FORMAT),
            }
        } else {
            0
        };
        let Some(len) = data_len(len) else {
            return self.quiet(noreply, reply::BAD_FORMAT);
        };
        if !self.limits.item_fits(key.len(), flags, len) {
            return Parsed::Invalid {
                reply: if noreply { b"" } else { reply::TOO_LARGE },
                consumed: self.consumed,
                swallow: len + 2,
                close: false,
                unlink: (kind == StoreKind::Set).then_some(Cow::Borrowed(key)),
            };
        }
        match self.data_block(len) {
            DataBlock::Incomplete => Parsed::Incomplete,
            DataBlock::Bad(consumed) => Parsed::Invalid {
                reply: if noreply { b"" } else { reply::BAD_DATA_CHUNK },
                consumed,
                swallow: 0,
                close: false,
                unlink: None,
            },
            DataBlock::Good(data, consumed) => Parsed::Request {
                request: Request::Store {
                    kind,
                    key,
                    flags,
                    exptime: exptime.into(),
                    cas,
                    noreply,
                    data,
                },
                consumed,
            },
        }
    }

    /// The `len` bytes after the line and their `\r\n`.
    fn data_block(&self, len: usize) -> DataBlock<'a> {
        // `len` fits the item size limit, so these cannot overflow.
        let end = self.consumed + len;
        let Some(block) = self.input.get(self.consumed..end + 2) else {
            return DataBlock::Incomplete;
        };
        if &block[len..] == b"\r\n" {
            DataBlock::Good(&block[..len], end + 2)
        } else {
            // memcached read the announced bytes and the two after them: it drops them all
            // and reads what follows as the next command.
            DataBlock::Bad(end + 2)
        }
    }

    /// `delete <key> [0] [noreply]`.
    fn delete(self) -> Parsed<'a> {
        let l = &self.line;
        if !(2..=4).contains(&l.n) {
            return self.invalid(reply::ERROR);
        }
        let mut noreply = false;
        if l.n > 2 {
            // A zero "hold time" is accepted for old clients; nothing else.
            let hold_is_zero = l.get(2) == b"0";
            noreply = l.noreply();
            let valid =
                (l.n == 3 && (hold_is_zero || noreply)) || (l.n == 4 && hold_is_zero && noreply);
            if !valid {
                return self.quiet(noreply, reply::BAD_DELETE);
            }
        }
        let key = l.get(1);
        if self.bad_key(key) {
            return self.quiet(noreply, reply::BAD_FORMAT);
        }
        self.request(Request::Delete { key, noreply })
    }

    /// `incr|decr <key> <value> [noreply]`.
    fn arith(self, incr: bool) -> Parsed<'a> {
        let l = &self.line;
        if !(3..=4).contains(&l.n) {
            return self.invalid(reply::ERROR);
        }
        let noreply = l.noreply();
        let key = l.get(1);
        if self.bad_key(key) {
            return self.quiet(noreply, reply::BAD_FORMAT);
        }
        match c_strtoull(l.get(2)) {
            Some(delta) => self.request(Request::Arith { incr, key, delta, noreply }),
            None => self.quiet(noreply, reply::BAD_DELTA),
        }
    }

    /// `touch <key> <exptime> [noreply]`.
    fn touch(self) -> Parsed<'a> {
        let l = &self.line;
        if !(3..=4).contains(&l.n) {
            return self.invalid(reply::ERROR);
        }
        let noreply = l.noreply();
        let key = l.get(1);
        if self.bad_key(key) {
            return self.quiet(noreply, reply::BAD_FORMAT);
        }
        match c_strtol(l.get(2)) {
            Some(exptime) => self.request(Request::Touch { key, exptime: exptime.into(), noreply }),
            None => self.quiet(noreply, reply::BAD_EXPTIME),
        }
    }

    /// `flush_all [delay] [noreply]`.
    fn flush_all(self) -> Parsed<'a> {
        let l = &self.line;
        if !(1..=3).contains(&l.n) {
            return self.invalid(reply::ERROR);
        }
        let noreply = l.noreply();
        let mut delay = 0;
        if l.n != if noreply { 2 } else { 1 } {
            match c_strtol(l.get(1)) {
                Some(d) => delay = d,
                None => return self.quiet(noreply, reply::BAD_EXPTIME),
            }
        }
        self.request(Request::FlushAll { delay: delay.into(), noreply })
    }

    /// `verbosity <level> [noreply]`.
    fn verbosity(self) -> Parsed<'a> {
        let l = &self.line;
        if !(2..=3).contains(&l.n) {
            return self.invalid(reply::ERROR);
        }
        let noreply = l.noreply();
        match c_strtoul(l.get(1)) {
            Some(level) => self.request(Request::Verbosity { level, noreply }),
            None => self.quiet(noreply, reply::BAD_FORMAT),
        }
    }

    /// `cache_memlimit <megabytes> [noreply]`.
    fn memlimit(self) -> Parsed<'a> {
        let l = &self.line;
        if !(2..=3).contains(&l.n) {
            return self.invalid(reply::ERROR);
        }
        let noreply = l.noreply();
        match c_strtoul(l.get(1)) {
            Some(mb) => self.request(Request::CacheMemlimit { megabytes: mb.into(), noreply }),
            // memcached answers a bad number with a bare "ERROR".
            None => self.quiet(noreply, reply::ERROR),
        }
    }

    /// `mg`, `md`, `ma <key> <flag>*`.
    fn meta(self, cmd: MetaCmd) -> Parsed<'a> {
        let l = &self.line;
        if l.n < 2 {
            return self.invalid(reply::ERROR);
        }
        let raw_key = l.get(1);
        if self.bad_key(raw_key) {
            return self.invalid(reply::BAD_FORMAT);
        }
        if l.n >= META_MAX_TOKENS {
            return self.invalid(match cmd {
                MetaCmd::Get => reply::MG_TOO_MANY_FLAGS,
                _ => reply::TOO_MANY_FLAGS,
            });
        }
        let (key, flags) = match meta_flags(raw_key, &l.tokens[2..l.n]) {
            Ok(parsed) => parsed,
            Err(error) => {
                return self.invalid(match cmd {
                    MetaCmd::Get => error.unwrap_or(reply::BAD_FORMAT),
                    _ => reply::INVALID_OR_DUPLICATE_FLAG,
                })
            }
        };
        if cmd == MetaCmd::Arith {
            if let Some(mode) = flags.token(b'M') {
                if !matches!(mode, b"I" | b"+" | b"D" | b"-") {
                    return self.invalid(reply::BAD_MA_MODE);
                }
            }
        }
        if opaque_too_long(&flags) {
            return self.invalid(reply::OPAQUE_TOO_LONG);
        }
        self.request(match cmd {
            MetaCmd::Get => Request::MetaGet { key, flags },
            MetaCmd::Delete => Request::MetaDelete { key, flags },
            MetaCmd::Arith => Request::MetaArith { key, flags },
        })
    }

    /// `ms <key> <datalen> <flag>*` and its data block.
    fn meta_set(self) -> Parsed<'a> {
        let l = &self.line;
        if l.n < 2 {
            return self.invalid(reply::ERROR);
        }
        let raw_key = l.get(1);
        if self.bad_key(raw_key) || l.n == 2 {
            return self.invalid(reply::BAD_FORMAT);
        }
        if l.n >= META_MAX_TOKENS {
            return self.invalid(reply::TOO_MANY_FLAGS);
        }
        let Some(len) = c_strtol(l.get(2)).and_then(data_len) else {
            return self.invalid(reply::BAD_FORMAT);
        };
        // From here on memcached knows the data length, and swallows the block on error.
        let refuse = |reply: &'static [u8], unlink: Option<Cow<'a, [u8]>>| Parsed::Invalid {
            reply,
            consumed: self.consumed,
            swallow: len + 2,
            close: false,
            unlink,
        };
        let (key, flags) = match meta_flags(raw_key, &l.tokens[3..l.n]) {
            Ok(parsed) => parsed,
            Err(error) => return refuse(error.unwrap_or(reply::BAD_FORMAT), None),
        };
        if let Some(mode) = flags.token(b'M') {
            if !matches!(mode, b"E" | b"A" | b"P" | b"R" | b"S") {
                return refuse(reply::BAD_MS_MODE, None);
            }
        }
        if opaque_too_long(&flags) {
            return refuse(reply::OPAQUE_TOO_LONG, None);
        }
        // Validated by meta_flags.
        let client_flags = flags.token(b'F').and_then(c_strtoul).unwrap_or(0);
        if !self.limits.item_fits(key.len(), client_flags, len) {
            return refuse(reply::TOO_LARGE, Some(key));
        }
        match self.data_block(len) {
            DataBlock::Incomplete => Parsed::Incomplete,
            // Meta commands report errors even with `q`.
            DataBlock::Bad(consumed) => Parsed::Invalid {
                reply: reply::BAD_DATA_CHUNK,
                consumed,
                swallow: 0,
                close: false,
                unlink: None,
            },
            DataBlock::Good(data, consumed) => {
                Parsed::Request { request: Request::MetaSet { key, data, flags }, consumed }
            }
        }
    }

    /// `me <key> [b]`: memcached only looks for a `b` right after the key.
    fn meta_debug(self) -> Parsed<'a> {
        let l = &self.line;
        let raw_key = l.get(1);
        if l.n < 2 || self.bad_key(raw_key) {
            return self.invalid(reply::BAD_FORMAT);
        }
        let mut flags = MetaFlags::default();
        let key = if l.n >= 3 && l.get(2) == b"b" {
            match decode_base64(raw_key) {
                Some(key) => {
                    flags.flags.push(MetaFlag { flag: b'b', token: &[] });
                    Cow::Owned(key)
                }
                None => return self.invalid(reply::BAD_FORMAT),
            }
        } else {
            Cow::Borrowed(raw_key)
        };
        self.request(Request::MetaDebug { key, flags })
    }
}

/// The meta commands that share [`Command::meta`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum MetaCmd {
    Get,
    Delete,
    Arith,
}

/// Whether the data block is all there and well terminated.
enum DataBlock<'a> {
    Incomplete,
    /// Not followed by `\r\n`; bytes used, line included.
    Bad(usize),
    /// The data and the bytes used, line included.
    Good(&'a [u8], usize),
}

/// memcached's bound on `<bytes>`: `0 <= len <= INT_MAX - 2` (the `\r\n` is counted in an
/// `int`).
fn data_len(len: i32) -> Option<usize> {
    if (0..=i32::MAX - 2).contains(&len) {
        usize::try_from(len).ok()
    } else {
        None
    }
}

/// Whether an `O` flag is longer than memcached allows.
fn opaque_too_long(flags: &MetaFlags<'_>) -> bool {
    flags.flags.iter().any(|f| f.flag == b'O' && 1 + f.token.len() > MAX_OPAQUE)
}

/// A meta command's key (decoded if it was base64) and its flags.
type MetaKeyAndFlags<'a> = (Cow<'a, [u8]>, MetaFlags<'a>);

/// memcached's `_meta_flag_preparse`: checks every flag of a meta command in order and
/// decodes a base64 key (`b`).
///
/// An unknown or repeated flag stops at once; a bad number or key is remembered (the last
/// message wins) and checking goes on. `Err(None)` is a bad `F` number, which carries no
/// message of its own (the command's default applies).
fn meta_flags<'a>(
    raw_key: &'a [u8],
    tokens: &[&'a [u8]],
) -> Result<MetaKeyAndFlags<'a>, Option<&'static [u8]>> {
    let mut seen = [false; 127];
    let mut key = Cow::Borrowed(raw_key);
    let mut failed = false;
    let mut message = None;
    let mut flags = MetaFlags { flags: Vec::with_capacity(tokens.len()) };
    for &token in tokens {
        let Some((&flag, rest)) = token.split_first() else { continue };
        let Some(seen) = seen.get_mut(usize::from(flag)).filter(|seen| !**seen) else {
            // memcached reports bytes above 126 as duplicates, too.
            return Err(Some(reply::DUPLICATE_FLAG));
        };
        *seen = true;
        let mut fail = |reply: Option<&'static [u8]>| {
            failed = true;
            if reply.is_some() {
                message = reply;
            }
        };
        match flag {
            b'b' => match decode_base64(raw_key) {
                Some(decoded) => key = Cow::Owned(decoded),
                None => fail(Some(reply::BAD_BASE64_KEY)),
            },
            b'N' | b'T' | b'R' if c_strtol(rest).is_none() => fail(Some(reply::BAD_TOKEN)),
            b'C' if c_strtoull(rest).is_none() => fail(Some(reply::BAD_TOKEN)),
            b'F' if c_strtoul(rest).is_none() => fail(None),
            b'M' if rest.len() != 1 => fail(Some(reply::BAD_M_LENGTH)),
            b'J' if c_strtoull(rest).is_none() => fail(Some(reply::BAD_INITIAL)),
            b'D' if c_strtoull(rest).is_none() => fail(Some(reply::BAD_DELTA_FLAG)),
            b'N' | b'T' | b'R' | b'C' | b'F' | b'M' | b'J' | b'D' => {}
            b'l' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'v' | b'h' | b'u'
            | b'q' | b'I' => {}
            _ => return Err(Some(reply::INVALID_FLAG)),
        }
        flags.flags.push(MetaFlag { flag, token: rest });
    }
    if failed {
        Err(message)
    } else {
        Ok((key, flags))
    }
}

/// memcached's base64 decoder (`base64.c`), quirks included: bytes outside the alphabet are
/// skipped, the count of the rest must be a positive multiple of 4, and decoding stops after
/// the first block that holds padding. `None` where memcached's returns 0 (failure).
fn decode_base64(src: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            b'=' => Some(0),
            _ => None,
        }
    }
    let count = src.iter().filter(|&&c| value(c).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let mut block = [0u8; 4];
    let mut filled = 0;
    let mut pad = 0;
    for &c in src {
        let Some(v) = value(c) else { continue };
        if c == b'=' {
            pad += 1;
        }
        block[filled] = v;
        filled += 1;
        if filled == 4 {
            out.push((block[0] << 2) | (block[1] >> 4));
            out.push((block[1] << 4) | (block[2] >> 2));
            out.push((block[2] << 6) | block[3]);
            filled = 0;
            if pad > 0 {
                if pad > 2 {
                    return None;
                }
                out.truncate(out.len() - pad);
                break;
            }
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
