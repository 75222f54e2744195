//! How 9P reaches the file servers: implementations of
//! [`Transport`](cairn_9p::transport::Transport) over TCP, Unix sockets and shared memory, the
//! listeners that hand connections to the session layer, and the client's `connect`.
//!
//! - [`stream`]: TCP and Unix sockets, cut into messages by [`framer`] (intro(5): every
//!   message starts with its size), sent through a per-connection queue and writer task.
//! - [`shm`]: PROSE's shared-memory channel (papers/003, "shared memory channels"): rings of
//!   message slots in a memory file both processes map, large payloads passed by reference,
//!   polling or doorbell waiting.
//! - [`listen`]: `tcp:HOST:PORT`, `unix:PATH`, `shm:PATH` ([`parse_listen`]) and the accept
//!   loops ([`serve_listener`]).
//! - [`connect`](mod@connect): the client's side, one [`ClientTransport`] for all three.

pub mod connect;
pub mod framer;
pub mod listen;
pub mod shm;
pub mod stream;

pub use connect::{connect, ClientTransport};
pub use framer::Framer;
pub use listen::{
    bind_listeners, parse_listen, serve_bound, serve_listener, BoundListener, ListenSpec,
};
pub use shm::{ShmMode, ShmTransport};
pub use stream::{ByteStream, StreamTransport};
