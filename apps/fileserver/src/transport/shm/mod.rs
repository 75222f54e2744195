//! PROSE's shared-memory channel (papers/003, "shared memory channels") as a 9P transport
//! between two processes on one machine.
//!
//! The client makes a memory file sized for two single-producer single-consumer rings of
//! message slots (one each way) and a payload region per direction ([`region`]), and two
//! eventfd doorbells. It connects to the server's Unix socket at `shm:PATH` and hands over the
//! memory file and both doorbells in one `SCM_RIGHTS` message with [`HELLO`]; the server maps
//! the file, checks its header and answers [`ACCEPTED`]. From then on messages move through
//! the rings ([`endpoint`]): small ones copied into a slot, large ones (a `Twrite` or an
//! `Rread` of more than a slot holds) written once into the sender's payload region and passed
//! by reference, so the receiver reads them in place as a [`SharedIoBuf`] whose drop gives the
//! memory back. The waiting mode ([`ShmMode`]) is the client's choice, recorded in the header.
//!
//! [`SharedIoBuf`]: cairn_rt::iobuf::SharedIoBuf

pub mod endpoint;
pub mod region;

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use cairn_hosted::net::unix::{UnixListener, UnixStream};

pub use endpoint::{ShmMode, ShmTransport, SPIN_NS};
pub use region::Geometry;
use region::{create_eventfd, Region, Side};

/// The client's first message on the setup socket, sent with the memory file, the server's
/// doorbell and the client's doorbell.
pub const HELLO: &[u8] = b"cairn-9p-shm/1";
/// The server's answer once it has mapped the channel.
pub const ACCEPTED: &[u8] = b"ok";

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Connects to the shared-memory 9P server listening at `path`: makes the channel with
/// `geometry`, hands it over, and returns the client's end once the server accepts. Runs on
/// the core that will use the transport.
pub async fn connect(
    path: impl AsRef<Path>,
    mode: ShmMode,
    geometry: Geometry,
) -> io::Result<ShmTransport> {
    let (region, memfd) = Region::create(geometry, mode.to_word())?;
    let server_bell = create_eventfd()?;
    let client_bell = create_eventfd()?;
    let socket = UnixStream::connect(path).await?;
    socket.send_fds(HELLO, &[memfd.as_fd(), server_bell.as_fd(), client_bell.as_fd()]).await?;
    let (answer, _) = socket.recv_fds(16).await?;
    if answer != ACCEPTED {
        return Err(invalid("the shm server refused the channel"));
    }
    let msize = u32::try_from(geometry.payload_bytes()).unwrap_or(u32::MAX);
    Ok(ShmTransport::start(region, Side::Client, mode, client_bell, server_bell, socket, msize))
}

/// The server's half of the handshake on an accepted setup socket: receives the channel,
/// checks it, maps it and answers. `msize` is the largest message accepted until
/// [`set_msize`](cairn_9p::transport::Transport::set_msize).
pub async fn accept_channel(socket: UnixStream, msize: u32) -> io::Result<ShmTransport> {
    let (hello, fds) = socket.recv_fds(64).await?;
    if hello != HELLO {
        return Err(invalid("not a cairn shm hello"));
    }
    let [memfd, server_bell, client_bell]: [_; 3] =
        fds.try_into().map_err(|_| invalid("the shm hello carries three descriptors"))?;
    let (region, mode) = Region::open(memfd.as_fd())?;
    let mode = ShmMode::from_word(mode).ok_or_else(|| invalid("unknown shm waiting mode"))?;
    drop(memfd);
    socket.send_buf(cairn_rt::iobuf::IoBuf::copy_from_slice(ACCEPTED)).await?;
    Ok(ShmTransport::start(region, Side::Server, mode, server_bell, client_bell, socket, msize))
}

/// A server's Unix socket at `shm:PATH`, where clients hand over channels.
pub struct ShmListener {
    listener: UnixListener,
    msize: u32,
}

impl ShmListener {
    /// Listens at `path` (which must not exist); channels accept messages of up to `msize`.
    pub fn bind(path: impl AsRef<Path>, msize: u32) -> io::Result<ShmListener> {
        Ok(ShmListener { listener: UnixListener::bind(path)?, msize })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        self.listener.path()
    }

    /// Waits for the next client's setup socket (the handshake is [`accept_channel`], which a
    /// server runs in the connection's own task so a slow client holds up nobody).
    pub async fn accept_socket(&self) -> io::Result<UnixStream> {
        self.listener.accept().await
    }

    /// Accepts the next client and completes its handshake.
    pub async fn accept(&self) -> io::Result<ShmTransport> {
        accept_channel(self.accept_socket().await?, self.msize).await
    }

    /// The `msize` new channels start with.
    pub fn msize(&self) -> u32 {
        self.msize
    }
}
