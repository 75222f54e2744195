//! Where a 9P server listens (`tcp:HOST:PORT`, `unix:PATH`, `shm:PATH`) and the accept loops
//! that hand each connection to the session layer (`cairn_9p::server::serve`).
//!
//! Connections belong to the core that accepts them (DESIGN.md, "Per-core ownership"): for TCP
//! every core binds its own `SO_REUSEPORT` socket on the same address and the kernel spreads
//! connections over them, as the cache does; a Unix socket cannot be shared that way, so
//! `unix:` and `shm:` listeners accept on one core.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::rc::Rc;

use cairn_9p::server::{serve, FileServer, ServerConfig};
use cairn_hosted::net::unix::UnixListener;
use cairn_hosted::net::{ListenSocket, TcpListener};
use cairn_rt::event::{sleep_ns, spawn_local};

use super::shm::{self, ShmListener};
use super::stream::StreamTransport;

/// The listen backlog of a TCP socket bound by [`serve_listener`] (the hosted TCP listener's).
const TCP_BACKLOG: i32 = 4096;

/// An address a 9P server listens on or a client connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenSpec {
    /// `tcp:HOST:PORT`, resolved.
    Tcp(SocketAddr),
    /// `unix:PATH`: 9P framed on a Unix stream socket.
    Unix(PathBuf),
    /// `shm:PATH`: the shared-memory rings, set up over a Unix socket at PATH.
    Shm(PathBuf),
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenSpec::Tcp(addr) => write!(f, "tcp:{addr}"),
            ListenSpec::Unix(path) => write!(f, "unix:{}", path.display()),
            ListenSpec::Shm(path) => write!(f, "shm:{}", path.display()),
        }
    }
}

/// Parses `tcp:HOST:PORT` (HOST a name or address, `[v6]` in brackets), `unix:PATH` or
/// `shm:PATH`. A name resolves to its first address.
pub fn parse_listen(spec: &str) -> Result<ListenSpec, String> {
    let (kind, rest) = spec
        .split_once(':')
        .ok_or_else(|| format!("{spec:?}: expected tcp:HOST:PORT, unix:PATH or shm:PATH"))?;
    match kind {
        "tcp" => {
            let addr = rest
                .to_socket_addrs()
                .map_err(|e| format!("{spec:?}: {e}"))?
                .next()
                .ok_or_else(|| format!("{spec:?}: no address"))?;
            Ok(ListenSpec::Tcp(addr))
        }
        "unix" | "shm" if rest.is_empty() => Err(format!("{spec:?}: the path is empty")),
        "unix" => Ok(ListenSpec::Unix(PathBuf::from(rest))),
        "shm" => Ok(ListenSpec::Shm(PathBuf::from(rest))),
        _ => Err(format!("{spec:?}: unknown transport {kind:?} (tcp, unix or shm)")),
    }
}

/// A bound listener not yet serving, which may be moved to the core that will serve it.
#[derive(Debug)]
pub enum BoundListener {
    /// One core's `SO_REUSEPORT` TCP socket.
    Tcp(ListenSocket),
    /// A Unix socket path, bound (9P framed on the stream).
    Unix(PathBuf),
    /// A Unix socket path, bound (shared-memory setup).
    Shm(PathBuf),
}

/// Binds `spec` for `cores` cores: for TCP one `SO_REUSEPORT` socket per core (with port 0,
/// the first socket's port for all); for `unix:` and `shm:` one entry, for the first core.
/// A Unix path that exists and is a socket (left by a server that died) is replaced.
pub fn bind_listeners(spec: &ListenSpec, cores: usize) -> io::Result<Vec<Option<BoundListener>>> {
    let mut out: Vec<Option<BoundListener>> = (0..cores.max(1)).map(|_| None).collect();
    match spec {
        ListenSpec::Tcp(addr) => {
            for (slot, socket) in out.iter_mut().zip(TcpListener::bind_per_core(*addr, cores)?) {
                *slot = Some(BoundListener::Tcp(socket));
            }
        }
        ListenSpec::Unix(path) | ListenSpec::Shm(path) => {
            remove_stale_socket(path)?;
            out[0] = Some(match spec {
                ListenSpec::Unix(_) => BoundListener::Unix(path.clone()),
                _ => BoundListener::Shm(path.clone()),
            });
        }
    }
    Ok(out)
}

/// Removes `path` if it is a socket (a dead server's); anything else there is an error.
fn remove_stale_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Binds `spec` on the calling core and serves it with [`serve_bound`]. For TCP the socket
/// has `SO_REUSEPORT`, so calling this on every core with the same (non-zero) port gives each
/// core its own accept queue; call it on one core only for `unix:` and `shm:`.
pub async fn serve_listener<S, F>(
    spec: &ListenSpec,
    make_server: F,
    config: ServerConfig,
) -> io::Result<()>
where
    S: FileServer,
    F: Fn() -> Rc<S>,
{
    let bound = match spec {
        ListenSpec::Tcp(addr) => BoundListener::Tcp(ListenSocket::bind(*addr, TCP_BACKLOG)?),
        ListenSpec::Unix(_) | ListenSpec::Shm(_) => {
            bind_listeners(spec, 1)?.swap_remove(0).expect("one listener")
        }
    };
    serve_bound(bound, make_server, config).await
}

/// Accepts connections on `listener` forever, serving each as its own task on the calling
/// core: `cairn_9p::server::serve(make_server(), transport, config)`. Returns only if the
/// listener cannot be set up; a failed accept or handshake affects that connection alone.
pub async fn serve_bound<S, F>(
    listener: BoundListener,
    make_server: F,
    config: ServerConfig,
) -> io::Result<()>
where
    S: FileServer,
    F: Fn() -> Rc<S>,
{
    match listener {
        BoundListener::Tcp(socket) => {
            let listener = TcpListener::from_socket(socket);
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        let transport = Rc::new(StreamTransport::new(stream, config.max_msize));
                        spawn_local(serve(make_server(), transport, config));
                    }
                    Err(_) => back_off().await,
                }
            }
        }
        BoundListener::Unix(path) => {
            let listener = UnixListener::bind(&path)?;
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let transport = Rc::new(StreamTransport::new(stream, config.max_msize));
                        spawn_local(serve(make_server(), transport, config));
                    }
                    Err(_) => back_off().await,
                }
            }
        }
        BoundListener::Shm(path) => {
            let listener = ShmListener::bind(&path, config.max_msize)?;
            loop {
                match listener.accept_socket().await {
                    Ok(socket) => {
                        let server = make_server();
                        spawn_local(async move {
                            if let Ok(transport) =
                                shm::accept_channel(socket, config.max_msize).await
                            {
                                serve(server, Rc::new(transport), config).await;
                            }
                        });
                    }
                    Err(_) => back_off().await,
                }
            }
        }
    }
}

/// After a failed accept (out of descriptors, a reset before accept): wait a moment.
async fn back_off() {
    sleep_ns(1_000_000).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            parse_listen("tcp:127.0.0.1:564"),
            Ok(ListenSpec::Tcp("127.0.0.1:564".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("tcp:[::1]:5640"),
            Ok(ListenSpec::Tcp("[::1]:5640".parse().unwrap()))
        );
        assert!(
            matches!(parse_listen("tcp:localhost:5640"), Ok(ListenSpec::Tcp(a)) if a.port() == 5640)
        );
        assert_eq!(parse_listen("unix:/run/9p.sock"), Ok(ListenSpec::Unix("/run/9p.sock".into())));
        assert_eq!(parse_listen("shm:/tmp/a:b"), Ok(ListenSpec::Shm("/tmp/a:b".into())));
        for bad in ["", "tcp", "tcp:nohost", "tcp:1.2.3.4:99999", "unix:", "udp:1.2.3.4:5"] {
            assert!(parse_listen(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn specs_print_as_they_parse() {
        for s in ["tcp:127.0.0.1:564", "unix:/a/b", "shm:/c"] {
            assert_eq!(parse_listen(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn stale_sockets_are_replaced_but_files_are_not() {
        let dir = std::env::temp_dir().join(format!("cairn-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plain");
        std::fs::write(&file, b"x").unwrap();
        assert!(bind_listeners(&ListenSpec::Unix(file.clone()), 2).is_err());
        let sock = dir.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let bound = bind_listeners(&ListenSpec::Shm(sock.clone()), 2).unwrap();
        assert!(matches!(bound[0], Some(BoundListener::Shm(_))) && bound[1].is_none());
        assert!(!sock.exists(), "the stale socket was removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
