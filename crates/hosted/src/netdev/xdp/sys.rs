//! The AF_XDP kernel interface this module uses, from `include/uapi/linux/if_xdp.h`
//! (Documentation/networking/af_xdp.rst), and thin checked wrappers over the socket calls.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `AF_XDP`.
pub(crate) const AF_XDP: i32 = 44;
/// `SOL_XDP`.
pub(crate) const SOL_XDP: i32 = 283;

/// `XDP_MMAP_OFFSETS`: where producer, consumer, flags and descriptors sit in each ring.
pub(crate) const XDP_MMAP_OFFSETS: i32 = 1;
/// `XDP_RX_RING`: the receive ring's size.
pub(crate) const XDP_RX_RING: i32 = 2;
/// `XDP_TX_RING`: the transmit ring's size.
pub(crate) const XDP_TX_RING: i32 = 3;
/// `XDP_UMEM_REG`: registers the frame area.
pub(crate) const XDP_UMEM_REG: i32 = 4;
/// `XDP_UMEM_FILL_RING`: the fill ring's size.
pub(crate) const XDP_UMEM_FILL_RING: i32 = 5;
/// `XDP_UMEM_COMPLETION_RING`: the completion ring's size.
pub(crate) const XDP_UMEM_COMPLETION_RING: i32 = 6;
/// `XDP_STATISTICS`: the socket's drop counters.
pub(crate) const XDP_STATISTICS: i32 = 7;
/// `XDP_OPTIONS`: whether the socket ended up in zero-copy mode.
pub(crate) const XDP_OPTIONS: i32 = 8;
/// `XDP_OPTIONS_ZEROCOPY`.
pub(crate) const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// `sxdp_flags`: force copy mode.
pub(crate) const XDP_COPY: u16 = 1 << 1;
/// `sxdp_flags`: force zero-copy mode.
pub(crate) const XDP_ZEROCOPY: u16 = 1 << 2;
/// `sxdp_flags`: the kernel sets `XDP_RING_NEED_WAKEUP` when it needs a system call to go on.
pub(crate) const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
/// A ring's flags word: the kernel waits for a wakeup (`sendto` for TX, `recvfrom`/`poll` for
/// the fill ring).
pub(crate) const XDP_RING_NEED_WAKEUP: u32 = 1;

/// The mmap page offsets of the four rings.
pub(crate) const XDP_PGOFF_RX_RING: i64 = 0;
/// See [`XDP_PGOFF_RX_RING`].
pub(crate) const XDP_PGOFF_TX_RING: i64 = 0x8000_0000;
/// See [`XDP_PGOFF_RX_RING`].
pub(crate) const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;
/// See [`XDP_PGOFF_RX_RING`].
pub(crate) const XDP_UMEM_PGOFF_COMPLETION_RING: i64 = 0x1_8000_0000;

/// `struct xdp_umem_reg` (the 32-byte layout; `tx_metadata_len` is zero).
#[repr(C)]
#[derive(Default)]
pub(crate) struct XdpUmemReg {
    pub(crate) addr: u64,
    pub(crate) len: u64,
    pub(crate) chunk_size: u32,
    pub(crate) headroom: u32,
    pub(crate) flags: u32,
    pub(crate) tx_metadata_len: u32,
}

/// `struct xdp_ring_offset`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct XdpRingOffset {
    pub(crate) producer: u64,
    pub(crate) consumer: u64,
    pub(crate) desc: u64,
    pub(crate) flags: u64,
}

/// `struct xdp_mmap_offsets`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct XdpMmapOffsets {
    pub(crate) rx: XdpRingOffset,
    pub(crate) tx: XdpRingOffset,
    pub(crate) fr: XdpRingOffset,
    pub(crate) cr: XdpRingOffset,
}

/// `struct sockaddr_xdp`.
#[repr(C)]
pub(crate) struct SockaddrXdp {
    pub(crate) family: u16,
    pub(crate) flags: u16,
    pub(crate) ifindex: u32,
    pub(crate) queue_id: u32,
    pub(crate) shared_umem_fd: u32,
}

/// `struct xdp_desc`: one RX or TX ring entry, a frame's UMEM address and length.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct XdpDesc {
    pub(crate) addr: u64,
    pub(crate) len: u32,
    pub(crate) options: u32,
}

/// `struct xdp_statistics`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct XdpStatisticsRaw {
    pub(crate) rx_dropped: u64,
    pub(crate) rx_invalid_descs: u64,
    pub(crate) tx_invalid_descs: u64,
    pub(crate) rx_ring_full: u64,
    pub(crate) rx_fill_ring_empty_descs: u64,
    pub(crate) tx_ring_empty_descs: u64,
}

/// `socket(AF_XDP, SOCK_RAW, 0)`.
pub(crate) fn xdp_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(fd, SOL_XDP, name, value)`.
pub(crate) fn set_option<T>(fd: &OwnedFd, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid `T` of `size_of::<T>()` bytes that the kernel only reads.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_XDP,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt(fd, SOL_XDP, name)` into a zeroed `T`; a shorter answer (an older kernel's
/// smaller struct) leaves the rest zero.
pub(crate) fn get_option<T: Default>(fd: &OwnedFd, name: i32) -> io::Result<T> {
    let mut value = T::default();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes and the kernel writes at most `len`.
    let r = unsafe {
        libc::getsockopt(fd.as_raw_fd(), SOL_XDP, name, (&mut value as *mut T).cast(), &mut len)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// `bind(fd, sockaddr_xdp)`.
pub(crate) fn bind(fd: &OwnedFd, addr: &SockaddrXdp) -> io::Result<()> {
    // SAFETY: `addr` is a valid `sockaddr_xdp` the kernel only reads.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const SockaddrXdp).cast(),
            size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_have_the_kernel_sizes() {
        assert_eq!(size_of::<XdpUmemReg>(), 32);
        assert_eq!(size_of::<XdpMmapOffsets>(), 128);
        assert_eq!(size_of::<SockaddrXdp>(), 16);
        assert_eq!(size_of::<XdpDesc>(), 16);
        assert_eq!(size_of::<XdpStatisticsRaw>(), 48);
    }
}
