//! The classic text commands: storage (`set`, `add`, `replace`, `append`, `prepend`, `cas`),
//! `delete`, `incr`/`decr` and `touch` (`protocol.txt`, "Storage commands", "Deletion",
//! "Increment/Decrement", "Touch"). With `noreply` nothing at all is written, errors
//! included, as memcached's `out_string` does.

use alloc::vec::Vec;

use super::{hash_key, Delta, Now, Outcome, Shard, KEY_MAX_LENGTH};
use crate::protocol::StoreKind;
use crate::store::classes::item_total;

/// Appends `line` and `\r\n` unless `noreply`.
#[inline]
fn reply(out: &mut Vec<u8>, noreply: bool, line: &[u8]) {
    if !noreply {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format";
const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache";
const NO_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object";

impl Shard {
    /// Checks a storage command's size before anything is stored, as memcached's
    /// `item_alloc` failure path does: too large for `-I`, or for the shard's memory. On
    /// failure the old item is dropped when `drop_old` (memcached does so for `set`, and for
    /// every `ms` mode), and the error line is returned.
    pub(super) fn check_size(
        &mut self,
        key: &[u8],
        client_flags: u32,
        data_len: usize,
        drop_old: bool,
        rel: u32,
    ) -> Result<(), &'static [u8]> {
        let error = if item_total(key.len(), client_flags, data_len) > self.max_item_size {
            self.counters.store_too_large += 1;
            TOO_LARGE
        } else if !self.store.fits(key.len() + data_len) {
            self.counters.store_no_memory += 1;
            NO_MEMORY
        } else {
            return Ok(());
        };
        if drop_old {
            if let Some(slot) = self.store.find(hash_key(key), key, rel) {
                self.store.remove(slot);
            }
        }
        Err(error)
    }

    /// `set`/`add`/`replace`/`append`/`prepend`/`cas`: `STORED`, `NOT_STORED`, `EXISTS` or
    /// `NOT_FOUND`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn store_command(
        &mut self,
        kind: StoreKind,
        key: &[u8],
        client_flags: u32,
        exptime: i64,
        cas: u64,
        noreply: bool,
        data: &[u8],
        now: Now,
        out: &mut Vec<u8>,
    ) {
        if key.len() > KEY_MAX_LENGTH {
            return reply(out, noreply, BAD_FORMAT);
        }
        let rel = now.rel();
        self.clock = rel;
        if let Err(line) =
            self.check_size(key, client_flags, data.len(), kind == StoreKind::Set, rel)
        {
            return reply(out, noreply, line);
        }
        let exptime = now.expiry(exptime);
        let line: &[u8] =
            match self.do_store(kind, key, data, client_flags, exptime, cas, false, 0, 0, rel) {
                Outcome::Stored(_) => b"STORED",
                Outcome::Exists => b"EXISTS",
                Outcome::NotFound => b"NOT_FOUND",
                Outcome::NotStored => b"NOT_STORED",
                Outcome::NoMemory => {
                    self.counters.store_no_memory += 1;
                    NO_MEMORY
                }
            };
        reply(out, noreply, line);
    }

    /// `delete <key>`: `DELETED` or `NOT_FOUND`.
    pub(super) fn delete(&mut self, key: &[u8], noreply: bool, now: Now, out: &mut Vec<u8>) {
        if key.len() > KEY_MAX_LENGTH {
            return reply(out, noreply, BAD_FORMAT);
        }
        let rel = now.rel();
        self.clock = rel;
        match self.store.find(hash_key(key), key, rel) {
            Some(slot) => {
                let class = self.store.item(slot).class();
                self.store.class_mut(class).delete_hits += 1;
                self.store.remove(slot);
                reply(out, noreply, b"DELETED");
            }
            None => {
                self.counters.delete_misses += 1;
                reply(out, noreply, b"NOT_FOUND");
            }
        }
    }

    /// `incr`/`decr <key> <delta>`: the new value, `NOT_FOUND`, or the non-numeric error.
    pub(super) fn arith(
        &mut self,
        incr: bool,
        key: &[u8],
        delta: u64,
        noreply: bool,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        if key.len() > KEY_MAX_LENGTH {
            return reply(out, noreply, BAD_FORMAT);
        }
        let rel = now.rel();
        self.clock = rel;
        match self.add_delta(key, incr, delta, 0, 0, rel) {
            Delta::Ok { buf, len, .. } => reply(out, noreply, &buf[..len]),
            Delta::NotFound => {
                if incr {
                    self.counters.incr_misses += 1;
                } else {
                    self.counters.decr_misses += 1;
                }
                reply(out, noreply, b"NOT_FOUND")
            }
            Delta::NonNumeric => {
                reply(out, noreply, b"CLIENT_ERROR cannot increment or decrement non-numeric value")
            }
            Delta::NoMemory => reply(out, noreply, b"SERVER_ERROR out of memory"),
            // Only with a cas, which the classic commands never give.
            Delta::CasMismatch => reply(out, noreply, b"EXISTS"),
        }
    }

    /// `touch <key> <exptime>`: `TOUCHED` or `NOT_FOUND`.
    pub(super) fn touch(
        &mut self,
        key: &[u8],
        exptime: i64,
        noreply: bool,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        if key.len() > KEY_MAX_LENGTH {
            return reply(out, noreply, BAD_FORMAT);
        }
        let rel = now.rel();
        self.clock = rel;
        self.counters.cmd_touch += 1;
        match self.store.find(hash_key(key), key, rel) {
            Some(slot) => {
                let class = self.store.item(slot).class();
                self.store.class_mut(class).touch_hits += 1;
                let item = self.store.item_mut(slot);
                item.set_exptime(now.expiry(exptime));
                item.bump(rel);
                reply(out, noreply, b"TOUCHED");
            }
            None => {
                self.counters.touch_misses += 1;
                reply(out, noreply, b"NOT_FOUND");
            }
        }
    }
}
