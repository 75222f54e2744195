//! The 9P file-server framework: a [`FileServer`] serves a tree; a session runs the
//! protocol for one connection on a [`Transport`](crate::transport::Transport).

mod fs;

pub use fs::{dtype, Credentials, DirEntry, FileServer, LockStatus};
