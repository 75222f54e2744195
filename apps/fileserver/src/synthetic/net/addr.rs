//! Addresses as the `ctl`, `local` and `remote` files spell them.
//!
//! Plan 9 writes an address `HOST!PORT` (ip(3), dial(2)): `135.104.9.52!564`, `::1!80`, and
//! `*!PORT` or a bare `PORT` for "every local address" in `announce`. This gateway also takes
//! the `HOST:PORT` and `[V6]:PORT` forms people type on Linux. Hosts are numeric: Plan 9 leaves
//! name lookup to the connection server (ndb/cs), and a lookup here would block the core.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cairn_9p::errno::{Errno, EINVAL};

/// Parses `HOST!PORT`, `HOST:PORT` or `[V6]:PORT`; with `announce`, also `*!PORT`, `*:PORT` and
/// a bare `PORT` (the unspecified IPv4 address: every local address).
pub(crate) fn parse(text: &str, announce: bool) -> Result<SocketAddr, Errno> {
    let text = text.trim();
    if announce {
        if let Ok(port) = text.parse::<u16>() {
            return Ok(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port));
        }
    }
    if let Some((host, port)) = text.rsplit_once('!') {
        return host_port(host, port, announce);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match text.rsplit_once(':') {
        // `*:PORT`; an IPv6 address without brackets has several colons and is refused.
        Some((host, port)) if !host.contains(':') => host_port(host, port, announce),
        _ => Err(EINVAL),
    }
}

fn host_port(host: &str, port: &str, announce: bool) -> Result<SocketAddr, Errno> {
    let port: u16 = port.parse().map_err(|_| EINVAL)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let ip: IpAddr = match host {
        "*" if announce => Ipv4Addr::UNSPECIFIED.into(),
        _ => host.parse().map_err(|_| EINVAL)?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// `addr` as Plan 9 writes it in `local` and `remote`: `HOST!PORT` and a newline.
pub(crate) fn format(addr: Option<SocketAddr>) -> String {
    match addr {
        Some(a) => format!("{}!{}\n", a.ip(), a.port()),
        None => "::!0\n".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plan9_and_linux_spellings_parse() {
        assert_eq!(parse("127.0.0.1!564", false), Ok(sa("127.0.0.1:564")));
        assert_eq!(parse("127.0.0.1:564\n", false), Ok(sa("127.0.0.1:564")));
        assert_eq!(parse("::1!80", false), Ok(sa("[::1]:80")));
        assert_eq!(parse("[::1]!80", false), Ok(sa("[::1]:80")));
        assert_eq!(parse("[::1]:80", false), Ok(sa("[::1]:80")));
    }

    #[test]
    fn announce_takes_a_bare_port_and_a_star() {
        assert_eq!(parse("7000", true), Ok(sa("0.0.0.0:7000")));
        assert_eq!(parse("*!7000", true), Ok(sa("0.0.0.0:7000")));
        assert_eq!(parse("*:7000", true), Ok(sa("0.0.0.0:7000")));
        assert_eq!(parse("127.0.0.1!0", true), Ok(sa("127.0.0.1:0")));
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in ["", "7000", "*!7000", "host!80", "1.2.3.4!", "1.2.3.4!70000", "::1:80", "x"] {
            assert_eq!(parse(bad, false), Err(EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn format_writes_host_bang_port() {
        assert_eq!(format(Some(sa("10.0.0.1:80"))), "10.0.0.1!80\n");
        assert_eq!(format(Some(sa("[::1]:7"))), "::1!7\n");
        assert_eq!(format(None), "::!0\n");
    }
}
