//! The 9P file-server framework: a [`FileServer`] serves a tree; [`serve`] runs the protocol
//! for one connection on a [`Transport`](crate::transport::Transport).
//!
//! The shape is Plan 9's lib9p (`srv`): the framework keeps the fid table, negotiates the
//! version, checks every request against the protocol's rules (intro(5) and the other manual
//! pages of section 5, diod's `protocol.md` for 9P2000.L), translates 9P2000's requests onto
//! the 9P2000.L-shaped [`FileServer`], runs requests that may wait as tasks that `Tflush` can
//! cancel, and sends replies without copying payloads: an `Rread` is a header buffer with the
//! file server's buffer chained behind it, and a `Twrite` payload reaches the file server as a
//! slice of the received message.
//!
//! - `session` ([`serve`], [`ServerConfig`]): the receive loop, version, flush and replies.
//! - `dispatch`: requests of both dialects and of 9P2000.L.
//! - `plan9`: 9P2000's open, create, stat, wstat and directory reads.
//! - `fids`: the fid table ([`MAX_FIDS`]). `flush`: cancellable requests.
//! - [`SessionStats`]: a connection's counters, read through [`serve_with_stats`].
//!
//! ```no_run
//! # use std::rc::Rc;
//! # async fn example<S: cairn_9p::server::FileServer, T: cairn_9p::transport::Transport>(
//! #     server: Rc<S>, transport: Rc<T>) {
//! use cairn_9p::server::{serve, ServerConfig};
//! // On a cairn core, once per accepted connection (usually as its own task):
//! serve(server, transport, ServerConfig::default()).await;
//! # }
//! ```

mod dispatch;
mod fail;
mod fids;
mod flush;
mod fs;
mod plan9;
mod session;
mod stats;

#[cfg(test)]
mod tests;

pub use fids::MAX_FIDS;
pub use fs::{dtype, Credentials, DirEntry, FileServer, LockStatus};
pub use session::{serve, serve_with_stats, ServerConfig};
pub use stats::{SessionCounters, SessionStats};
