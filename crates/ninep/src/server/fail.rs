//! Why a request failed, in both dialects' terms.
//!
//! A [`Fail`] carries the Linux errno that 9P2000.L's `Rlerror` sends and, where the framework
//! has a better wording than [`errno_string`] for 9P2000's `Rerror` (intro(5): "unknown fid",
//! "fid in use", ...), that text. File-server errors are bare errnos and get the standard text.

use crate::codec::{Dialect, Rmessage};
use crate::errno::{errno_string, Errno};

/// A request's failure: an errno, and optionally the 9P2000 text to send instead of the
/// standard one for that errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fail {
    /// The errno `Rlerror` carries.
    pub(crate) errno: Errno,
    /// The `Rerror` text, when it is not `errno_string(errno)`.
    text: Option<&'static str>,
}

impl Fail {
    /// A failure with its own 9P2000 wording.
    pub(crate) const fn msg(text: &'static str, errno: Errno) -> Fail {
        Fail { errno, text: Some(text) }
    }

    /// The text of the `Rerror`.
    pub(crate) fn ename(&self) -> &'static str {
        self.text.unwrap_or_else(|| errno_string(self.errno))
    }

    /// The error reply of `dialect` for this failure.
    pub(crate) fn reply(&self, dialect: Dialect) -> Rmessage<'static> {
        dialect.error_reply(self.ename(), self.errno)
    }
}

impl From<Errno> for Fail {
    fn from(errno: Errno) -> Fail {
        Fail { errno, text: None }
    }
}

/// Failures the framework itself reports, with Plan 9's wording where Plan 9 has one.
pub(crate) mod fails {
    use super::Fail;
    use crate::errno::*;

    /// A fid the connection does not know.
    pub(crate) const UNKNOWN_FID: Fail = Fail::msg("unknown fid", EBADF);
    /// A new fid (attach, walk, xattrwalk) that is already in use.
    pub(crate) const FID_IN_USE: Fail = Fail::msg("fid in use", EBADF);
    /// The connection holds as many fids as it may.
    pub(crate) const TOO_MANY_FIDS: Fail = Fail::msg("too many fids", EMFILE);
    /// Read or write on a fid that is not open (or not open that way).
    pub(crate) const NOT_OPEN: Fail = Fail::msg("fid not open", EBADF);
    /// Read on a fid open only for writing.
    pub(crate) const NOT_OPEN_FOR_READ: Fail = Fail::msg("fid not open for reading", EBADF);
    /// Write on a fid open only for reading.
    pub(crate) const NOT_OPEN_FOR_WRITE: Fail = Fail::msg("fid not open for writing", EBADF);
    /// Open, create or walk (9P2000) of a fid that is already open.
    pub(crate) const ALREADY_OPEN: Fail = Fail::msg("fid already open", EBADF);
    /// Any request before `Tversion` settled a dialect.
    pub(crate) const NO_VERSION: Fail = Fail::msg("version not negotiated", EPROTO);
    /// `Tauth`: this framework does no authentication (attach(5)). In 9P2000.L the errno is
    /// ENOENT, which is what diod answers when it needs none and what its clients (libnpclient's
    /// `diod_auth`) take to mean "attach without an afid"; any other errno makes them give up.
    pub(crate) const NO_AUTH: Fail = Fail::msg("authentication not required", ENOENT);
    /// A request whose tag is already in flight (intro(5): tags must be unique).
    pub(crate) const DUPLICATE_TAG: Fail = Fail::msg("duplicate tag", EINVAL);
    /// The reply to a request that `Tflush` cancelled (flush(5), lib9p).
    pub(crate) const INTERRUPTED: Fail = Fail::msg("interrupted", EINTR);
    /// A message type that is no request.
    pub(crate) const BAD_TYPE: Fail = Fail::msg("unknown message type", EOPNOTSUPP);
    /// A request of the other dialect.
    pub(crate) const WRONG_DIALECT: Fail = Fail::msg("message not in this dialect", EOPNOTSUPP);
    /// A message whose fields do not parse.
    pub(crate) const BOTCH: Fail = Fail::msg("protocol botch", EPROTO);
    /// A walk of more than MAXWELEM names (walk(5)).
    pub(crate) const TOO_MANY_NAMES: Fail = Fail::msg("too many names in walk", EINVAL);
    /// A file name that is empty, `.`, `..` or contains `/` or NUL where a new name is needed.
    pub(crate) const BAD_NAME: Fail = Fail::msg("bad file name", EINVAL);
    /// A 9P2000 directory read at an offset other than 0 or the end of the previous read.
    pub(crate) const BAD_DIR_OFFSET: Fail = Fail::msg("bad offset in directory read", EINVAL);
    /// A directory read whose count cannot hold even one entry.
    pub(crate) const COUNT_TOO_SMALL: Fail =
        Fail::msg("count too small for a directory entry", EINVAL);
    /// A reply that does not fit in `msize`.
    pub(crate) const REPLY_TOO_LARGE: Fail = Fail::msg("reply too large for msize", ERANGE);
    /// Tremove of a fid that other requests of the connection are still using.
    pub(crate) const FID_BUSY: Fail = Fail::msg("fid in use by another request", EBUSY);
    /// Twstat that would make a file a directory or the reverse (stat(5)).
    pub(crate) const DMDIR_CHANGE: Fail = Fail::msg("cannot change directory bit", EINVAL);
    /// Twstat with a user or group that is not a number (this framework's ids are numeric).
    pub(crate) const BAD_OWNER: Fail = Fail::msg("unknown user or group", EINVAL);
}
