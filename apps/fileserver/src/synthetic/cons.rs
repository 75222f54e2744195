//! `dev/cons`: the serving process's console, as in Plan 9's cons(3).
//!
//! Reading returns input a line at a time: at most `count` bytes, up to and including the next
//! newline (what is left of a longer line comes with the next read); at end of input, what
//! remains and then empty reads. Writing sends the bytes to the output. Offsets are ignored,
//! as for a Plan 9 console.
//!
//! Input is read on the core's io_uring by a [`Pump`], so a read with nothing typed blocks only
//! its own request and a `Tflush` of it loses no input. Output goes through a [`Writer`], so a
//! flushed write is printed whole or not at all. One input stream serves every reader of every
//! console made from the same descriptor: a line goes to whichever read asks first.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use cairn_9p::errno::{Errno, EIO};
use cairn_rt::iobuf::IoBuf;

use super::fdio;
use super::text::errno_of;
use super::wait::Pump;
use super::writer::{Sink, Writer};

/// Bytes asked of the input per read.
const INPUT_CHUNK: usize = 4096;
/// The longest line held back waiting for its newline; a longer one is returned in pieces.
const MAX_LINE: usize = 64 * 1024;

/// Input received and not yet read.
#[derive(Default)]
struct LineBuffer {
    bytes: Vec<u8>,
    eof: bool,
}

impl LineBuffer {
    /// The next piece a read of `count` bytes returns now, if any is ready.
    fn take(&mut self, count: usize) -> Option<IoBuf> {
        let line_end = self.bytes.iter().position(|&b| b == b'\n').map(|i| i + 1);
        let n = match line_end {
            Some(end) => end.min(count),
            None if self.eof || self.bytes.len() >= count.min(MAX_LINE) => {
                self.bytes.len().min(count)
            }
            None => return None,
        };
        if n == 0 {
            // End of input with nothing left.
            return self.eof.then(IoBuf::new);
        }
        let piece = IoBuf::copy_from_slice(&self.bytes[..n]);
        self.bytes.drain(..n);
        Some(piece)
    }
}

/// The console's two ends.
pub(crate) struct Console {
    input: Option<Rc<OwnedFd>>,
    lines: RefCell<LineBuffer>,
    reader: Pump<io::Result<IoBuf>>,
    writer: Option<Writer>,
}

impl Console {
    /// A console reading `input` and writing `output` (either may be missing: reads then see
    /// end of file, writes fail with `EIO`).
    pub(crate) fn new(input: Option<OwnedFd>, output: Option<OwnedFd>) -> Console {
        Console {
            input: input.map(Rc::new),
            lines: RefCell::new(LineBuffer::default()),
            reader: Pump::new(),
            writer: output.map(|fd| Writer::new(Sink::Fd(Rc::new(fd)))),
        }
    }

    /// Reads the next line, or its first `count` bytes.
    pub(crate) async fn read(&self, count: u32) -> Result<IoBuf, Errno> {
        if count == 0 {
            return Ok(IoBuf::new());
        }
        let Some(input) = &self.input else { return Ok(IoBuf::new()) };
        let pump = self.reader.handle();
        // Each round either returns or consumes one completed read of the input.
        loop {
            if let Some(piece) = self.lines.borrow_mut().take(count as usize) {
                return Ok(piece);
            }
            let fd = input.clone();
            match pump.next(move || fdio::read(fd.clone(), INPUT_CHUNK)).await {
                None => return Ok(IoBuf::new()),
                Some(Ok(buf)) if buf.is_empty() => self.lines.borrow_mut().eof = true,
                Some(Ok(buf)) => self.lines.borrow_mut().bytes.extend_from_slice(&buf),
                Some(Err(e)) => return Err(errno_of(&e)),
            }
        }
    }

    /// Writes `data` to the output, whole.
    pub(crate) async fn write(&self, data: &[u8]) -> Result<u32, Errno> {
        let Some(writer) = &self.writer else { return Err(EIO) };
        writer.handle().write(IoBuf::copy_from_slice(data)).await?;
        Ok(data.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(bytes: &[u8], eof: bool) -> LineBuffer {
        LineBuffer { bytes: bytes.to_vec(), eof }
    }

    #[test]
    fn lines_come_one_at_a_time() {
        let mut b = buffer(b"one\ntwo\nthr", false);
        assert_eq!(b.take(100).unwrap().as_slice(), b"one\n");
        assert_eq!(b.take(100).unwrap().as_slice(), b"two\n");
        assert!(b.take(100).is_none(), "a partial line waits for its newline");
        b.eof = true;
        assert_eq!(b.take(100).unwrap().as_slice(), b"thr");
        assert!(b.take(100).unwrap().is_empty(), "then end of file");
    }

    #[test]
    fn a_short_count_splits_a_line() {
        let mut b = buffer(b"abcdef\n", false);
        assert_eq!(b.take(4).unwrap().as_slice(), b"abcd");
        assert_eq!(b.take(4).unwrap().as_slice(), b"ef\n");
        let mut b = buffer(b"abcdef", false);
        assert_eq!(b.take(4).unwrap().as_slice(), b"abcd", "count reached without newline");
    }
}
