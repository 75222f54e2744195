//! The XDP program that steers frames to the socket, built with four `bpf(2)` commands and no
//! compiler: an XSKMAP (`BPF_MAP_CREATE`), a five-instruction program (`BPF_PROG_LOAD`), the
//! socket put in the map at its queue (`BPF_MAP_UPDATE_ELEM`), and the attachment to the
//! interface (`BPF_LINK_CREATE`, see [`super::netlink`] for the older netlink way).
//!
//! The program is what libxdp's default program does for one socket per queue:
//!
//! ```text
//! r2 = *(u32 *)(r1 + 16)        ; ctx->rx_queue_index (struct xdp_md)
//! r1 = map[xsks] ll             ; ld_imm64 with BPF_PSEUDO_MAP_FD
//! r3 = XDP_PASS                 ; flags: the action when no socket sits at that index
//! call bpf_redirect_map         ; helper 51
//! exit                          ; return its verdict
//! ```
//!
//! The map and program live as long as their descriptors (and the link's), so nothing is pinned
//! in bpffs (there is none inside `ip netns exec`).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: `BPF_XDP`.
const BPF_XDP: u32 = 37;
/// `ld_imm64` source register meaning "the immediate is a map descriptor".
const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `bpf_redirect_map` helper number.
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
/// `XDP_PASS` verdict.
const XDP_PASS: i32 = 2;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Insn {
    code: u8,
    /// dst register in the low nibble, src register in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

/// The redirect program for XSKMAP `map_fd` (see the module documentation).
fn redirect_program(map_fd: RawFd) -> [Insn; 6] {
    const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
    const LD_DW_IMM: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW
    const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
    const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
    const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
    [
        insn(LDX_W, 2, 1, 16, 0),
        insn(LD_DW_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        insn(MOV64_K, 3, 0, 0, XDP_PASS),
        insn(CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        insn(EXIT, 0, 0, 0, 0),
    ]
}

/// `bpf(cmd, attr, size_of(attr))`, returning the non-negative result.
fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<i32> {
    // SAFETY: `attr` is a valid, writable attribute struct of the given size; the kernel
    // zero-extends it to its own `union bpf_attr` and reads or writes only within the size.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, size_of::<A>() as libc::c_uint)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as i32)
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` is a descriptor the kernel just returned, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// An XSKMAP and the redirect program that uses it.
pub(crate) struct RedirectProgram {
    map: OwnedFd,
    program: OwnedFd,
}

impl RedirectProgram {
    /// Creates the map (room for queues `0 .. queues`) and loads the program.
    pub(crate) fn load(queues: u32) -> io::Result<RedirectProgram> {
        #[repr(C)]
        struct MapCreate {
            map_type: u32,
            key_size: u32,
            value_size: u32,
            max_entries: u32,
            map_flags: u32,
            inner_map_fd: u32,
            numa_node: u32,
            map_name: [u8; 16],
        }
        let mut attr = MapCreate {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: queues.max(1),
            map_flags: 0,
            inner_map_fd: 0,
            numa_node: 0,
            map_name: *b"cairn_xsks\0\0\0\0\0\0",
        };
        let map = owned(bpf(BPF_MAP_CREATE, &mut attr)?);

        #[repr(C)]
        struct ProgLoad {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
            log_level: u32,
            log_size: u32,
            log_buf: u64,
            kern_version: u32,
            prog_flags: u32,
            prog_name: [u8; 16],
            prog_ifindex: u32,
            expected_attach_type: u32,
        }
        let insns = redirect_program(map.as_raw_fd());
        let license = b"Dual MIT/GPL\0";
        let mut log = vec![0u8; 64 * 1024];
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 0,
            log_size: 0,
            log_buf: 0,
            kern_version: 0,
            prog_flags: 0,
            prog_name: *b"cairn_xsk_redir\0",
            prog_ifindex: 0,
            expected_attach_type: BPF_XDP,
        };
        let program = match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => owned(fd),
            Err(_) => {
                // Load again with the verifier's log, to say why.
                attr.log_level = 1;
                attr.log_size = log.len() as u32;
                attr.log_buf = log.as_mut_ptr() as u64;
                let e = bpf(BPF_PROG_LOAD, &mut attr).err().unwrap_or_else(|| {
                    io::Error::other("program loaded only with the verifier log on")
                });
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                return Err(io::Error::new(e.kind(), format!("BPF_PROG_LOAD: {e}: {text}")));
            }
        };
        Ok(RedirectProgram { map, program })
    }

    /// Points queue `queue`'s map entry at AF_XDP socket `socket` (which must be bound).
    pub(crate) fn insert(&self, queue: u32, socket: RawFd) -> io::Result<()> {
        #[repr(C)]
        struct MapUpdate {
            map_fd: u32,
            _pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        let key = queue;
        let value = socket as u32;
        let mut attr = MapUpdate {
            map_fd: self.map.as_raw_fd() as u32,
            _pad: 0,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            flags: 0,
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    /// The program's descriptor (for a netlink attachment).
    pub(crate) fn program_fd(&self) -> RawFd {
        self.program.as_raw_fd()
    }

    /// Attaches the program to interface `ifindex` with a BPF link in mode `xdp_flags`
    /// (`XDP_FLAGS_SKB_MODE` or `XDP_FLAGS_DRV_MODE`). The program stays attached while the
    /// returned descriptor is open, and no longer: a crashed process detaches it.
    pub(crate) fn link(&self, ifindex: u32, xdp_flags: u32) -> io::Result<OwnedFd> {
        #[repr(C)]
        struct LinkCreate {
            prog_fd: u32,
            target_ifindex: u32,
            attach_type: u32,
            flags: u32,
        }
        let mut attr = LinkCreate {
            prog_fd: self.program.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: xdp_flags,
        };
        bpf(BPF_LINK_CREATE, &mut attr).map(owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_encodes_as_the_kernel_expects() {
        let p = redirect_program(7);
        assert_eq!(size_of::<Insn>(), 8);
        // ldxw r2, [r1 + 16]
        assert_eq!((p[0].code, p[0].regs, p[0].off), (0x61, 0x12, 16));
        // lddw r1, map fd 7 (src = BPF_PSEUDO_MAP_FD), then the empty second half
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!(p[2], insn(0, 0, 0, 0, 0));
        assert_eq!((p[3].code, p[3].regs, p[3].imm), (0xb7, 0x03, 2));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
    }

    #[test]
    fn the_verifier_accepts_the_program() {
        let program = RedirectProgram::load(4).expect("load (needs CAP_BPF)");
        assert!(program.program_fd() >= 0);
    }
}
