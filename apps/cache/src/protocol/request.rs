//! The requests of memcached's text protocol, parsed: the contract between the parser
//! ([`super::parse`]) and the executor ([`crate::engine`]).
//!
//! Everything here follows memcached's `protocol.txt` (the text protocol and the meta
//! commands). Keys and data borrow from the connection's input buffer; nothing is copied until
//! the executor stores a value.

use alloc::borrow::Cow;
use alloc::vec::Vec;

/// The retrieval commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetKind {
    /// `get <key>*`: `VALUE <key> <flags> <bytes>`.
    Get,
    /// `gets <key>*`: also the cas unique.
    Gets,
    /// `gat <exptime> <key>*`: get and touch.
    Gat,
    /// `gats <exptime> <key>*`: get and touch, with the cas unique.
    Gats,
}

/// The storage commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the key is present.
    Replace,
    /// Append the data to the present value.
    Append,
    /// Prepend the data to the present value.
    Prepend,
    /// Store only if the item's cas unique still equals the one given.
    Cas,
}

/// One meta-command flag: a single ASCII letter and the token glued to it (`T30` is flag `T`
/// with token `30`; `v` has an empty token). `protocol.txt`, "Meta Commands".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaFlag<'a> {
    /// The flag letter.
    pub flag: u8,
    /// The token after the letter (may be empty).
    pub token: &'a [u8],
}

/// The flags of a meta command, in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetaFlags<'a> {
    /// Every flag, in request order.
    pub flags: Vec<MetaFlag<'a>>,
}

impl<'a> MetaFlags<'a> {
    /// Whether `flag` was given.
    pub fn has(&self, flag: u8) -> bool {
        self.flags.iter().any(|f| f.flag == flag)
    }

    /// The token of `flag`, if given.
    pub fn token(&self, flag: u8) -> Option<&'a [u8]> {
        self.flags.iter().find(|f| f.flag == flag).map(|f| f.token)
    }

    /// The token of `flag` as a signed 32-bit number, read as memcached reads `T`, `N` and
    /// `R` (`strtol`, low 32 bits kept). The parser has checked these three, so for them
    /// `None` only means the flag was not given.
    pub fn signed(&self, flag: u8) -> Option<i64> {
        self.token(flag).and_then(crate::cnum::c_strtol).map(i64::from)
    }

    /// The token of `flag` as an unsigned 32-bit number, read as memcached reads `F`
    /// (`strtoul`, low 32 bits kept). Checked by the parser for `F`.
    pub fn unsigned32(&self, flag: u8) -> Option<u32> {
        self.token(flag).and_then(crate::cnum::c_strtoul)
    }

    /// The token of `flag` as an unsigned 64-bit number, read as memcached reads `C`, `D` and
    /// `J` (`strtoull`). Checked by the parser for these three.
    pub fn unsigned64(&self, flag: u8) -> Option<u64> {
        self.token(flag).and_then(crate::cnum::c_strtoull)
    }
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`, `gets`, `gat`, `gats`: `exptime` is set for the touching kinds.
    Get {
        /// Which retrieval command.
        kind: GetKind,
        /// The new expiration time for `gat`/`gats` (raw protocol value).
        exptime: Option<i64>,
        /// The keys, in request order: at least one, except for `gat <exptime>` with none,
        /// which memcached answers with a bare `END`.
        keys: Vec<&'a [u8]>,
    },
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`, with their data block.
    Store {
        /// Which storage command.
        kind: StoreKind,
        /// The key.
        key: &'a [u8],
        /// The client's opaque flags.
        flags: u32,
        /// Expiration time (raw protocol value: 0 never, up to 30 days relative, beyond that
        /// an absolute Unix time, negative already expired).
        exptime: i64,
        /// The cas unique to compare (`cas` only; 0 otherwise).
        cas: u64,
        /// Whether the client asked for no reply.
        noreply: bool,
        /// The data block, without its trailing `\r\n`.
        data: &'a [u8],
    },
    /// `delete <key> [noreply]`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// No reply wanted.
        noreply: bool,
    },
    /// `incr`/`decr <key> <value> [noreply]`.
    Arith {
        /// `incr` (true) or `decr` (false).
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// The amount, a 64-bit unsigned integer.
        delta: u64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiration time (raw protocol value).
        exptime: i64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        /// Seconds (or absolute time) before the flush takes effect; 0 is now.
        delay: i64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `stats [group]`: the group words as given (empty for general stats).
    Stats {
        /// `settings`, `items`, `slabs`, `sizes`, `conns`, `reset`, ... (empty: general).
        args: Vec<&'a [u8]>,
    },
    /// `version`.
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity {
        /// The level.
        level: u32,
        /// No reply wanted.
        noreply: bool,
    },
    /// `quit`: close the connection.
    Quit,
    /// `mg <key> <flags>*`: meta get.
    MetaGet {
        /// The key (decoded when the `b` flag says it was sent in base64).
        key: Cow<'a, [u8]>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `ms <key> <datalen> <flags>*` and its data block: meta set.
    MetaSet {
        /// The key (decoded when base64).
        key: Cow<'a, [u8]>,
        /// The data block, without its trailing `\r\n`.
        data: &'a [u8],
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `md <key> <flags>*`: meta delete.
    MetaDelete {
        /// The key (decoded when base64).
        key: Cow<'a, [u8]>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `ma <key> <flags>*`: meta arithmetic.
    MetaArith {
        /// The key (decoded when base64).
        key: Cow<'a, [u8]>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `mn`: meta no-op, answered `MN`.
    MetaNoop,
    /// `me <key>`: meta debug.
    MetaDebug {
        /// The key (decoded when base64).
        key: Cow<'a, [u8]>,
        /// The flags (`b`).
        flags: MetaFlags<'a>,
    },
    /// `cache_memlimit <megabytes> [noreply]`.
    CacheMemlimit {
        /// The new limit in MiB.
        megabytes: u64,
        /// No reply wanted.
        noreply: bool,
    },
}

impl<'a> Request<'a> {
    /// The one key a single-key command acts on (`None` for multi-key gets and global
    /// commands): the server sends the request to the core that owns this key.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Request::Store { key, .. }
            | Request::Delete { key, .. }
            | Request::Arith { key, .. }
            | Request::Touch { key, .. } => Some(key),
            Request::MetaGet { key, .. }
            | Request::MetaSet { key, .. }
            | Request::MetaDelete { key, .. }
            | Request::MetaArith { key, .. }
            | Request::MetaDebug { key, .. } => Some(key),
            _ => None,
        }
    }
}
