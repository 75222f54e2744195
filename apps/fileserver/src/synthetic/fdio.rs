//! Reads and writes of plain file descriptors (the console's) on the core's io_uring.
//!
//! The hosted runtime does all of a core's I/O through its ring (cairn-hosted's `reactor`), so
//! the console's stdin and stdout go there too: a read of a terminal or pipe that has nothing
//! waits in the kernel without blocking the core, and other requests keep being served.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use cairn_hosted::reactor::Op;
use cairn_rt::iobuf::IoBuf;
use io_uring::{opcode, types};

/// The file offset io_uring reads as "the file's current position" (`-1`), which is what a
/// terminal, a pipe, or a redirected file read in sequence needs.
const CURRENT_POSITION: u64 = u64::MAX;

/// Reads at most `max` bytes from `fd` into a fresh buffer; an empty buffer is end of file.
pub(crate) async fn read(fd: Rc<OwnedFd>, max: usize) -> io::Result<IoBuf> {
    let mut buf = IoBuf::with_capacity(max.max(1));
    let tail = buf.tailroom_mut();
    let (ptr, len) = (tail.as_mut_ptr(), tail.len() as u32);
    let entry =
        opcode::Read::new(types::Fd(fd.as_raw_fd()), ptr, len).offset(CURRENT_POSITION).build();
    // SAFETY: the kernel writes into the buffer's tailroom, heap memory owned by `buf`, and
    // reads descriptor `fd`; the op keeps both (moving the handles moves neither the bytes nor
    // the descriptor) until the kernel's completion, even if this future is dropped.
    let (c, (mut buf, _fd)) = unsafe { Op::start(entry, (buf, fd)) }.await;
    let n = c.into_result()? as usize;
    buf.claim_tailroom(n).expect("the kernel wrote at most the tailroom");
    Ok(buf)
}

/// Writes all of `buf` to `fd`.
pub(crate) async fn write_all(fd: Rc<OwnedFd>, mut buf: IoBuf) -> io::Result<()> {
    let mut fd = fd;
    while !buf.is_empty() {
        let entry = opcode::Write::new(types::Fd(fd.as_raw_fd()), buf.as_ptr(), buf.len() as u32)
            .offset(CURRENT_POSITION)
            .build();
        // SAFETY: the kernel reads the buffer's view, memory owned by `buf`, and uses `fd`; the
        // op keeps both until its completion.
        let (c, (back, back_fd)) = unsafe { Op::start(entry, (buf, fd)) }.await;
        (buf, fd) = (back, back_fd);
        match c.into_result()? as usize {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf.advance(n),
        }
    }
    Ok(())
}
