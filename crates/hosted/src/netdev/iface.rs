//! Interface facts from the kernel by `ioctl` (netdevice(7)): index, hardware address, MTU, and
//! bringing a link up.
//!
//! Each call opens a datagram socket in the calling thread's network namespace, so a thread
//! that has entered a namespace with `setns(2)` sees that namespace's interfaces.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use cairn_net::wire::EthernetAddress;

/// `struct ifreq`: an interface name and a 24-byte union (netdevice(7)).
#[repr(C)]
pub(crate) struct IfReq {
    /// The interface name, NUL-terminated.
    pub(crate) name: [u8; libc::IFNAMSIZ],
    /// `ifr_ifru`: a sockaddr, an int or the flags, depending on the request.
    pub(crate) data: [u8; 24],
}

impl IfReq {
    /// A request about interface `name`, checked to fit (15 bytes at most, no NUL).
    pub(crate) fn new(name: &str) -> io::Result<IfReq> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.as_bytes().contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        let mut req = IfReq { name: [0; libc::IFNAMSIZ], data: [0; 24] };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(req)
    }

    /// The name the kernel wrote back (TUNSETIFF fills in the name it chose).
    pub(crate) fn name(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(self.name.len());
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
}

/// Runs `ioctl(fd, request, req)` and maps failure to the OS error.
pub(crate) fn ioctl(fd: i32, request: libc::c_ulong, req: &mut IfReq) -> io::Result<()> {
    // SAFETY: `req` is a valid, writable `struct ifreq` for the duration of the call; every
    // request used in this crate reads or writes only within it.
    if unsafe { libc::ioctl(fd, request as _, req as *mut IfReq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn query(name: &str, request: libc::c_ulong) -> io::Result<IfReq> {
    let mut req = IfReq::new(name)?;
    let socket = control_socket()?;
    ioctl(socket.as_raw_fd(), request, &mut req)?;
    Ok(req)
}

/// The index of interface `name` in the calling thread's namespace.
pub fn index(name: &str) -> io::Result<u32> {
    IfReq::new(name)?;
    let c = CString::new(name).expect("checked for NUL");
    // SAFETY: `c` is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}

/// The hardware (MAC) address of interface `name` (SIOCGIFHWADDR).
pub fn mac(name: &str) -> io::Result<EthernetAddress> {
    let req = query(name, libc::SIOCGIFHWADDR)?;
    // The union holds a `struct sockaddr`: family (2 bytes), then the address bytes.
    Ok(EthernetAddress::from_bytes(&req.data[2..8]))
}

/// The MTU of interface `name` (SIOCGIFMTU).
pub fn mtu(name: &str) -> io::Result<usize> {
    let req = query(name, libc::SIOCGIFMTU)?;
    let mtu = i32::from_ne_bytes(req.data[..4].try_into().expect("4 bytes"));
    usize::try_from(mtu).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative MTU"))
}

/// Brings interface `name` up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP).
pub fn set_up(name: &str) -> io::Result<()> {
    let socket = control_socket()?;
    let mut req = IfReq::new(name)?;
    ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req)?;
    let flags = i16::from_ne_bytes([req.data[0], req.data[1]]) | libc::IFF_UP as i16;
    req.data[..2].copy_from_slice(&flags.to_ne_bytes());
    ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_with_its_facts() {
        let index = index("lo").unwrap();
        assert!(index > 0);
        assert_eq!(mac("lo").unwrap(), EthernetAddress([0; 6]));
        assert!(mtu("lo").unwrap() >= 1500);
    }

    #[test]
    fn bad_names_are_refused_before_the_kernel_sees_them() {
        assert!(IfReq::new("").is_err());
        assert!(IfReq::new("sixteen_chars_xx").is_err());
        assert!(IfReq::new("a\0b").is_err());
        assert_eq!(index("cairn-no-such0").unwrap_err().raw_os_error(), Some(libc::ENODEV));
    }
}
