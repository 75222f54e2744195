//! The meta commands: `mg`, `ms`, `md`, `ma`, `me` (`protocol.txt`, "Meta Commands"), as
//! memcached 1.6.18 answers them (`proto_text.c`, `process_m*_command`).
//!
//! Flags are checked first, as memcached's `_meta_flag_preparse`: a repeated flag, an
//! unknown one or a bad numeric token is an error, and errors are always written, `q` or
//! not. Return flags are written in the order the request gave them, and flags that modify
//! the item (`T`, `N`) take effect at their place in that order, so `t` before `T` shows the
//! old TTL. In quiet mode `q` drops only the nominal reply: `EN` for `mg`; `HD` for `ms`,
//! `md` and `ma` (1.6.18 still writes `NS`, `EX`, `NF`).

use alloc::vec::Vec;

use super::{hash_key, text, Delta, Now, Outcome, Shard, KEY_MAX_LENGTH};
use crate::protocol::{MetaFlags, StoreKind};
use crate::store::{bits, NewItem};

/// memcached's `MFLAG_MAX_OPT_LENGTH`: at most this many tokens in a meta command line
/// (command, key, for `ms` the length, flags, and the terminating empty token).
const MAX_TOKENS: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`, counting the `O`.
const MAX_OPAQUE: usize = 32;

const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format";
const BAD_TOKEN: &[u8] = b"CLIENT_ERROR bad token in command line format";
const INVALID_OR_DUPLICATE: &[u8] = b"CLIENT_ERROR invalid or duplicate flag";
const OPAQUE_TOO_LONG: &[u8] = b"CLIENT_ERROR opaque token too long";

/// The flags of one meta command, checked and decoded (memcached's `struct _meta_flags`).
#[derive(Default)]
struct Opts {
    key_binary: bool,
    no_update: bool,
    vivify: bool,
    value: bool,
    set_stale: bool,
    no_reply: bool,
    req_cas: Option<u64>,
    new_cas: u64,
    new_ttl: Option<u32>,
    autoviv_exptime: u32,
    recache_time: u32,
    client_flags: u32,
    mode: u8,
    delta: u64,
    initial: u64,
}

/// memcached's `_meta_flag_preparse`. The error is the line to send (`md`/`ma` replace it
/// with their generic one); as in memcached, a later bad token's message wins over an
/// earlier one, and a bad `F` keeps whatever message was already chosen.
fn preparse(flags: &MetaFlags<'_>, now: Now) -> Result<Opts, &'static [u8]> {
    let mut opts = Opts { delta: 1, ..Opts::default() };
    let mut seen = [false; 128];
    let mut error: Option<&'static [u8]> = None;
    for f in &flags.flags {
        let letter = usize::from(f.flag);
        if letter >= 127 || seen[letter] {
            return Err(b"CLIENT_ERROR duplicate flag");
        }
        seen[letter] = true;
        let token = f.token;
        let ttl = text::parse_strtol(token).map(|t| now.expiry(i64::from(t)));
        match f.flag {
            b'b' => opts.key_binary = true,
            b'N' => {
                opts.vivify = true;
                match ttl {
                    Some(t) => opts.autoviv_exptime = t,
                    None => error = Some(BAD_TOKEN),
                }
            }
            b'T' => match ttl {
                Some(t) => opts.new_ttl = Some(t),
                None => error = Some(BAD_TOKEN),
            },
            b'R' => match ttl {
                Some(t) => opts.recache_time = t,
                None => error = Some(BAD_TOKEN),
            },
            b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'l' | b'h' => {}
            b'v' => opts.value = true,
            b'u' => opts.no_update = true,
            b'q' => opts.no_reply = true,
            b'F' => match text::parse_strtoul(token) {
                Some(v) => opts.client_flags = v,
                None => error = Some(error.unwrap_or(BAD_FORMAT)),
            },
            b'C' => match text::parse_strtoull(token) {
                Some(v) => opts.req_cas = Some(v),
                None => error = Some(BAD_TOKEN),
            },
            b'E' => match text::parse_strtoull(token) {
                Some(v) => opts.new_cas = v,
                None => error = Some(BAD_TOKEN),
            },
            b'M' => {
                if token.len() != 1 {
                    error = Some(b"CLIENT_ERROR incorrect length for M token");
                } else {
                    opts.mode = token[0];
                }
            }
            b'J' => match text::parse_strtoull(token) {
                Some(v) => opts.initial = v,
                None => error = Some(b"CLIENT_ERROR invalid numeric initial value"),
            },
            b'D' => match text::parse_strtoull(token) {
                Some(v) => opts.delta = v,
                None => error = Some(b"CLIENT_ERROR invalid numeric delta value"),
            },
            b'I' => opts.set_stale = true,
            _ => return Err(b"CLIENT_ERROR invalid flag"),
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(opts),
    }
}

/// Whether an `O` token is longer than memcached allows.
fn opaque_too_long(flags: &MetaFlags<'_>) -> bool {
    flags.flags.iter().any(|f| f.flag == b'O' && f.token.len() + 1 > MAX_OPAQUE)
}

/// Writes an error line (always written, whatever `q` says).
fn error_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// ` k<key>`, or ` k<base64 key> b` for a binary key (memcached's `META_KEY`).
fn push_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        text::push_base64(out, key);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// The ` O<opaque>` and ` k<key>` return flags, in request order (the only ones miss and
/// failure replies carry).
fn push_opaque_and_key(out: &mut Vec<u8>, flags: &MetaFlags<'_>, key: &[u8], binary: bool) {
    for f in &flags.flags {
        match f.flag {
            b'O' => {
                out.extend_from_slice(b" O");
                out.extend_from_slice(f.token);
            }
            b'k' => push_key(out, key, binary),
            _ => {}
        }
    }
}

/// ` t<seconds left>` or ` t-1` (memcached prints `exptime - current_time` as unsigned).
fn push_ttl(out: &mut Vec<u8>, exptime: u32, rel: u32) {
    out.extend_from_slice(b" t");
    if exptime == 0 {
        out.extend_from_slice(b"-1");
    } else {
        text::push_u64(out, u64::from(exptime.wrapping_sub(rel)));
    }
}

/// What differs between the meta commands in the checks they all start with.
struct MetaStart {
    /// Tokens of the command line besides its flags (`mg <key>`: 3 with the command itself
    /// counted as memcached counts; `ms` also has the data length).
    fixed_tokens: usize,
    /// The reply when there are more flags than memcached reads.
    too_many_flags: &'static [u8],
    /// The reply to any flag error, where the command reports them all alike (`md`, `ma`).
    flag_error: Option<&'static [u8]>,
}

/// memcached's reply to too many flags on `ms`, `md` and `ma` (`mg` says "are too long").
const TOO_MANY_FLAGS: &[u8] = b"CLIENT_ERROR options flags too long";

/// `mg`: three fixed tokens; it says "are too long" and reports each flag error as it is.
const MG_START: MetaStart = MetaStart {
    fixed_tokens: 3,
    too_many_flags: b"CLIENT_ERROR options flags are too long",
    flag_error: None,
};

/// `md` and `ma`: every flag error is "invalid or duplicate flag".
/// `ms`: four fixed tokens (the data length too).
const MS_START: MetaStart =
    MetaStart { fixed_tokens: 4, too_many_flags: TOO_MANY_FLAGS, flag_error: None };

const MD_MA_START: MetaStart = MetaStart {
    fixed_tokens: 3,
    too_many_flags: TOO_MANY_FLAGS,
    flag_error: Some(INVALID_OR_DUPLICATE),
};

impl Shard {
    /// The checks every meta command starts with, in memcached's order: counts the command,
    /// then the key's length, the number of flags, and the flags themselves.
    fn meta_start(
        &mut self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        now: Now,
        start: MetaStart,
    ) -> Result<Opts, &'static [u8]> {
        self.counters.cmd_meta += 1;
        if key.len() > KEY_MAX_LENGTH {
            return Err(BAD_FORMAT);
        }
        if flags.flags.len() + start.fixed_tokens > MAX_TOKENS {
            return Err(start.too_many_flags);
        }
        preparse(flags, now).map_err(|line| start.flag_error.unwrap_or(line))
    }

    /// `mg <key> <flags>*`: `VA <size> <flags>*` and the value, `HD <flags>*`, or `EN`.
    pub(super) fn meta_get(
        &mut self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let opts = match self.meta_start(key, flags, now, MG_START) {
            Ok(opts) => opts,
            Err(line) => return error_line(out, line),
        };
        if opaque_too_long(flags) {
            return error_line(out, OPAQUE_TOO_LONG);
        }
        let rel = now.rel();
        let hash = hash_key(key);
        let mut slot = self.store.find(hash, key, rel);
        let mut created = false;
        if slot.is_none() && opts.vivify {
            let data = Shard::item_data(key, [b"", b""]);
            let new = NewItem { cas: opts.new_cas, ..NewItem::default() };
            if let Ok(s) = self.store.insert(hash, data, key.len(), new, rel) {
                slot = Some(s);
                created = true;
            }
        }
        let Some(slot) = slot else {
            self.counters.cmd_get += 1;
            self.counters.get_misses += 1;
            if !opts.no_reply {
                out.extend_from_slice(b"EN");
                push_opaque_and_key(out, flags, key, opts.key_binary);
                out.extend_from_slice(b"\r\n");
            }
            return;
        };
        let item = self.store.item_mut(slot);
        let value_len = item.value().len() as u64;
        if opts.value {
            out.extend_from_slice(b"VA ");
            text::push_u64(out, value_len);
        } else {
            out.extend_from_slice(b"HD");
        }
        let mut won = false;
        let mut ttl_set = false;
        for f in &flags.flags {
            match f.flag {
                b'T' => {
                    ttl_set = true;
                    item.set_exptime(opts.new_ttl.unwrap_or(0));
                }
                b'N' if created => {
                    item.set_exptime(opts.autoviv_exptime);
                    won = true;
                }
                b'R' if item.bits() & bits::TOKEN_SENT == 0
                    && !created
                    && item.exptime() != 0
                    && item.exptime() < opts.recache_time =>
                {
                    won = true;
                }
                b's' => {
                    out.extend_from_slice(b" s");
                    text::push_u64(out, value_len);
                }
                b't' => push_ttl(out, item.exptime(), rel),
                b'c' => {
                    out.extend_from_slice(b" c");
                    text::push_u64(out, item.cas());
                }
                b'f' => {
                    out.extend_from_slice(b" f");
                    text::push_u64(out, u64::from(item.client_flags()));
                }
                b'l' => {
                    out.extend_from_slice(b" l");
                    text::push_u64(out, u64::from(rel.wrapping_sub(item.time())));
                }
                b'h' => {
                    out.extend_from_slice(if item.bits() & bits::FETCHED != 0 {
                        b" h1"
                    } else {
                        b" h0"
                    });
                }
                b'O' => {
                    out.extend_from_slice(b" O");
                    out.extend_from_slice(f.token);
                }
                b'k' => push_key(out, item.key(), item.bits() & bits::KEY_BINARY != 0),
                _ => {}
            }
        }
        if item.bits() & bits::TOKEN_SENT != 0 {
            out.extend_from_slice(b" Z");
        }
        if item.bits() & bits::STALE != 0 {
            out.extend_from_slice(b" X");
            if item.bits() & bits::TOKEN_SENT == 0 {
                won = true;
            }
        }
        if won {
            out.extend_from_slice(b" W");
            item.update_bits(bits::TOKEN_SENT, 0);
        }
        out.extend_from_slice(b"\r\n");
        if opts.value {
            out.extend_from_slice(item.value());
            out.extend_from_slice(b"\r\n");
        }
        if !opts.no_update {
            item.bump(rel);
        }
        let class = item.class();
        if ttl_set {
            self.counters.cmd_touch += 1;
            self.store.class_mut(class).touch_hits += 1;
        } else {
            self.counters.cmd_get += 1;
            self.store.class_mut(class).get_hits += 1;
        }
    }

    /// `ms <key> <datalen> <flags>*` and its data: `HD`, `NS`, `EX` or `NF`, with `O`, `k`
    /// and `c` return flags.
    pub(super) fn meta_set(
        &mut self,
        key: &[u8],
        data: &[u8],
        flags: &MetaFlags<'_>,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let opts = match self.meta_start(key, flags, now, MS_START) {
            Ok(opts) => opts,
            Err(line) => return error_line(out, line),
        };
        let mut kind = match opts.mode {
            0 | b'S' => StoreKind::Set,
            b'E' => StoreKind::Add,
            b'A' => StoreKind::Append,
            b'P' => StoreKind::Prepend,
            b'R' => StoreKind::Replace,
            _ => return error_line(out, b"CLIENT_ERROR invalid mode for ms M token"),
        };
        // memcached notes a long opaque first but reports the mode error before it.
        if opaque_too_long(flags) {
            return error_line(out, OPAQUE_TOO_LONG);
        }
        if opts.req_cas.is_some() && matches!(kind, StoreKind::Set | StoreKind::Replace) {
            kind = StoreKind::Cas;
        }
        let rel = now.rel();
        if let Err(line) = self.check_size(key, opts.client_flags, data.len(), true, rel) {
            return error_line(out, line);
        }
        let exptime = opts.new_ttl.unwrap_or(0);
        let set_stale = opts.set_stale && kind == StoreKind::Cas;
        let item_bits = if opts.key_binary { bits::KEY_BINARY } else { 0 };
        let result = self.do_store(
            kind,
            key,
            data,
            opts.client_flags,
            exptime,
            opts.req_cas.unwrap_or(0),
            set_stale,
            opts.new_cas,
            item_bits,
            rel,
        );
        let (code, cas): (&[u8], u64) = match result {
            Outcome::Stored(cas) => {
                if opts.no_reply {
                    return;
                }
                (b"HD", cas)
            }
            Outcome::Exists => (b"EX", 0),
            Outcome::NotFound => (b"NF", 0),
            Outcome::NotStored => (b"NS", 0),
            Outcome::NoMemory => {
                self.counters.store_no_memory += 1;
                return error_line(out, b"SERVER_ERROR out of memory storing object");
            }
        };
        out.extend_from_slice(code);
        for f in &flags.flags {
            match f.flag {
                b'O' => {
                    out.extend_from_slice(b" O");
                    out.extend_from_slice(f.token);
                }
                b'k' => push_key(out, key, opts.key_binary),
                b'c' => {
                    out.extend_from_slice(b" c");
                    text::push_u64(out, cas);
                }
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// `md <key> <flags>*`: `HD`, `NF` or `EX`; with `I`, marks the item stale instead of
    /// deleting it (and `T` sets its TTL).
    pub(super) fn meta_delete(
        &mut self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let opts = match self.meta_start(key, flags, now, MD_MA_START) {
            Ok(opts) => opts,
            Err(line) => return error_line(out, line),
        };
        if opaque_too_long(flags) {
            return error_line(out, OPAQUE_TOO_LONG);
        }
        let rel = now.rel();
        let code: &[u8] = match self.store.find(hash_key(key), key, rel) {
            Some(slot) => {
                let item = self.store.item(slot);
                if opts.req_cas.is_some_and(|cas| cas != item.cas()) {
                    self.counters.delete_misses += 1;
                    b"EX"
                } else if opts.set_stale {
                    let cas = if opts.new_cas != 0 { opts.new_cas } else { self.store.next_cas() };
                    let item = self.store.item_mut(slot);
                    if let Some(ttl) = opts.new_ttl {
                        item.set_exptime(ttl);
                    }
                    item.update_bits(bits::STALE, bits::TOKEN_SENT);
                    let time = item.time();
                    item.modified(time, cas);
                    if opts.no_reply {
                        return;
                    }
                    b"HD"
                } else {
                    let class = item.class();
                    self.store.class_mut(class).delete_hits += 1;
                    self.store.remove(slot);
                    if opts.no_reply {
                        return;
                    }
                    b"HD"
                }
            }
            None => {
                self.counters.delete_misses += 1;
                b"NF"
            }
        };
        out.extend_from_slice(code);
        push_opaque_and_key(out, flags, key, opts.key_binary);
        out.extend_from_slice(b"\r\n");
    }

    /// `ma <key> <flags>*`: `HD` or `VA <len>` with the new value, `NF`, `NS` or `EX`.
    pub(super) fn meta_arith(
        &mut self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let opts = match self.meta_start(key, flags, now, MD_MA_START) {
            Ok(opts) => opts,
            Err(line) => return error_line(out, line),
        };
        let incr = match opts.mode {
            0 | b'I' | b'+' => true,
            b'D' | b'-' => false,
            _ => return error_line(out, b"CLIENT_ERROR invalid mode for ma M token"),
        };
        if opaque_too_long(flags) {
            return error_line(out, OPAQUE_TOO_LONG);
        }
        let rel = now.rel();
        let req_cas = opts.req_cas.unwrap_or(0);
        let mut created = false;
        let (slot, buf, len) =
            match self.add_delta(key, incr, opts.delta, req_cas, opts.new_cas, rel) {
                Delta::Ok { slot, buf, len } => {
                    if opts.no_reply {
                        return;
                    }
                    (Some(slot), buf, len)
                }
                Delta::NonNumeric => {
                    return error_line(
                        out,
                        b"CLIENT_ERROR cannot increment or decrement non-numeric value",
                    )
                }
                Delta::NoMemory => return error_line(out, b"SERVER_ERROR out of memory"),
                Delta::NotFound if opts.vivify => {
                    let (buf, len) = text::u64_digits(opts.initial);
                    let data = Shard::item_data(key, [&buf[..len], b""]);
                    let new = NewItem { cas: opts.new_cas, ..NewItem::default() };
                    match self.store.insert(hash_key(key), data, key.len(), new, rel) {
                        Ok(slot) => {
                            created = true;
                            (Some(slot), buf, len)
                        }
                        Err(_) => {
                            return error_line(
                                out,
                                b"SERVER_ERROR Out of memory allocating new item",
                            )
                        }
                    }
                }
                Delta::NotFound => {
                    if incr {
                        self.counters.incr_misses += 1;
                    } else {
                        self.counters.decr_misses += 1;
                    }
                    out.extend_from_slice(b"NF");
                    (None, [0; 20], 0)
                }
                Delta::CasMismatch => {
                    out.extend_from_slice(b"EX");
                    (None, [0; 20], 0)
                }
            };
        let Some(slot) = slot else {
            push_opaque_and_key(out, flags, key, opts.key_binary);
            out.extend_from_slice(b"\r\n");
            return;
        };
        if opts.value {
            out.extend_from_slice(b"VA ");
            text::push_u64(out, len as u64);
        } else {
            out.extend_from_slice(b"HD");
        }
        let item = self.store.item_mut(slot);
        for f in &flags.flags {
            match f.flag {
                b'c' => {
                    out.extend_from_slice(b" c");
                    text::push_u64(out, item.cas());
                }
                b't' => push_ttl(out, item.exptime(), rel),
                b'T' => item.set_exptime(opts.new_ttl.unwrap_or(0)),
                b'N' if created => item.set_exptime(opts.autoviv_exptime),
                b'O' => {
                    out.extend_from_slice(b" O");
                    out.extend_from_slice(f.token);
                }
                b'k' => push_key(out, key, opts.key_binary),
                _ => {}
            }
        }
        if opts.value {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&buf[..len]);
        }
        out.extend_from_slice(b"\r\n");
    }

    /// `me <key>`: `ME <key> exp=.. la=.. cas=.. fetch=.. cls=.. size=..` or `EN`.
    pub(super) fn meta_debug(&mut self, key: &[u8], now: Now, out: &mut Vec<u8>) {
        self.counters.cmd_meta += 1;
        if key.len() > KEY_MAX_LENGTH {
            return error_line(out, BAD_FORMAT);
        }
        let rel = now.rel();
        let Some(slot) = self.store.find(hash_key(key), key, rel) else {
            return out.extend_from_slice(b"EN\r\n");
        };
        let item = self.store.item(slot);
        out.extend_from_slice(b"ME ");
        if item.bits() & bits::KEY_BINARY != 0 {
            text::push_base64(out, item.key());
        } else {
            out.extend_from_slice(item.key());
        }
        out.extend_from_slice(b" exp=");
        if item.exptime() == 0 {
            out.extend_from_slice(b"-1");
        } else {
            // memcached prints `current_time - exptime` with %d: minus the seconds left.
            text::push_i64(out, i64::from(rel.wrapping_sub(item.exptime()) as i32));
        }
        out.extend_from_slice(b" la=");
        text::push_u64(out, u64::from(rel.wrapping_sub(item.time())));
        out.extend_from_slice(b" cas=");
        text::push_u64(out, item.cas());
        out.extend_from_slice(if item.bits() & bits::FETCHED != 0 {
            b" fetch=yes"
        } else {
            b" fetch=no"
        });
        out.extend_from_slice(b" cls=");
        text::push_u64(out, u64::from(item.class()));
        out.extend_from_slice(b" size=");
        text::push_u64(out, item.memcached_size() as u64);
        out.extend_from_slice(b"\r\n");
    }
}
