//! Property tests of the IOBuf module: random sequences of operations on buffers and chains
//! behave like the same operations on a plain `Vec<u8>` model, and the ones that promise not to
//! copy leave the copy counter alone.
//!
//! Copies are measured per thread ([`ThreadCopyMeter`]), because other tests copy buffers in
//! parallel threads. Inputs (which are built by copying) are made before each meter starts.

use alloc::vec::Vec;

use alloc::vec;
use proptest::collection::vec as vec_of;
use proptest::prelude::*;
use proptest::sample::Index;

use super::counter::thread_meter::ThreadCopyMeter;
use super::{IoBuf, IoBufChain, Segment, SharedIoBuf};

/// A buffer of kind `B` holding `bytes`, with the given rooms around them.
fn segment<B: Segment>(headroom: usize, bytes: &[u8], tailroom: usize) -> B {
    let mut buf = IoBuf::with_headroom(headroom, bytes.len() + tailroom);
    buf.extend_from_slice(bytes);
    B::from_unique(buf)
}

fn chain_bytes<B: Segment>(chain: &IoBufChain<B>) -> Vec<u8> {
    chain.slices().flatten().copied().collect()
}

/// One operation on a chain, with its operands.
#[derive(Clone, Debug)]
enum ChainOp {
    PushBack { bytes: Vec<u8>, headroom: usize },
    PushFront { bytes: Vec<u8>, headroom: usize },
    Advance(Index),
    TrimEnd(Index),
    Truncate(Index),
    KeepBackOfSplit(Index),
    KeepFrontOfSplit(Index),
    SplitAndRejoin(Index),
    AppendChain(Vec<Vec<u8>>),
    PopFront,
    PopBack,
    ReadU32BeAt(Index),
    ReadU16LeAt(Index),
}

fn chain_op() -> impl Strategy<Value = ChainOp> {
    let bytes = || vec_of(any::<u8>(), 0..24);
    prop_oneof![
        3 => (bytes(), 0..8usize).prop_map(|(bytes, headroom)| ChainOp::PushBack { bytes, headroom }),
        2 => (bytes(), 0..8usize).prop_map(|(bytes, headroom)| ChainOp::PushFront { bytes, headroom }),
        2 => any::<Index>().prop_map(ChainOp::Advance),
        1 => any::<Index>().prop_map(ChainOp::TrimEnd),
        1 => any::<Index>().prop_map(ChainOp::Truncate),
        1 => any::<Index>().prop_map(ChainOp::KeepBackOfSplit),
        1 => any::<Index>().prop_map(ChainOp::KeepFrontOfSplit),
        2 => any::<Index>().prop_map(ChainOp::SplitAndRejoin),
        1 => vec_of(bytes(), 0..4).prop_map(ChainOp::AppendChain),
        1 => Just(ChainOp::PopFront),
        1 => Just(ChainOp::PopBack),
        1 => any::<Index>().prop_map(ChainOp::ReadU32BeAt),
        1 => any::<Index>().prop_map(ChainOp::ReadU16LeAt),
    ]
}

/// Applies `op` to `chain` and to `model`, checking that the chain copies nothing.
fn apply_chain_op<B: Segment>(
    chain: &mut IoBufChain<B>,
    model: &mut Vec<u8>,
    op: &ChainOp,
) -> Result<(), TestCaseError> {
    // Operands that need copying to build are built before the meter starts.
    let new_segment = match op {
        ChainOp::PushBack { bytes, headroom } | ChainOp::PushFront { bytes, headroom } => {
            Some(segment::<B>(*headroom, bytes, 1))
        }
        _ => None,
    };
    let other_chain: Option<IoBufChain<B>> = match op {
        ChainOp::AppendChain(parts) => Some(parts.iter().map(|part| segment(0, part, 0)).collect()),
        _ => None,
    };
    let meter = ThreadCopyMeter::start();
    match op {
        ChainOp::PushBack { bytes, .. } => {
            chain.push_back(new_segment.expect("built above"));
            model.extend_from_slice(bytes);
        }
        ChainOp::PushFront { bytes, .. } => {
            chain.push_front(new_segment.expect("built above"));
            model.splice(0..0, bytes.iter().copied());
        }
        ChainOp::Advance(index) => {
            let n = index.index(model.len() + 1);
            chain.advance(n);
            model.drain(..n);
        }
        ChainOp::TrimEnd(index) => {
            let n = index.index(model.len() + 1);
            chain.trim_end(n);
            model.truncate(model.len() - n);
        }
        ChainOp::Truncate(index) => {
            let len = index.index(model.len() + 2);
            chain.truncate(len);
            model.truncate(len);
        }
        ChainOp::KeepBackOfSplit(index) => {
            let at = index.index(model.len() + 1);
            let front = chain.split_to(at);
            prop_assert_eq!(chain_bytes(&front), &model[..at]);
            model.drain(..at);
        }
        ChainOp::KeepFrontOfSplit(index) => {
            let at = index.index(model.len() + 1);
            let back = chain.split_off(at);
            prop_assert_eq!(chain_bytes(&back), &model[at..]);
            model.truncate(at);
        }
        ChainOp::SplitAndRejoin(index) => {
            let at = index.index(model.len() + 1);
            let mut front = chain.split_to(at);
            prop_assert_eq!(front.len(), at);
            front.append(core::mem::take(chain));
            *chain = front;
        }
        ChainOp::AppendChain(parts) => {
            chain.append(other_chain.expect("built above"));
            for part in parts {
                model.extend_from_slice(part);
            }
        }
        ChainOp::PopFront => {
            if let Some(first) = chain.pop_front() {
                prop_assert_eq!(&*first, &model[..first.len()]);
                model.drain(..first.len());
            } else {
                prop_assert!(model.is_empty());
            }
        }
        ChainOp::PopBack => {
            if let Some(last) = chain.pop_back() {
                let keep = model.len() - last.len();
                prop_assert_eq!(&*last, &model[keep..]);
                model.truncate(keep);
            } else {
                prop_assert!(model.is_empty());
            }
        }
        ChainOp::ReadU32BeAt(index) => {
            let at = index.index(model.len() + 1);
            let mut cursor = chain.cursor();
            cursor.skip(at).map_err(|end| TestCaseError::fail(alloc::format!("{end}")))?;
            let expected =
                model.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            prop_assert_eq!(cursor.read_u32_be().ok(), expected);
        }
        ChainOp::ReadU16LeAt(index) => {
            let at = index.index(model.len() + 1);
            let mut cursor = chain.cursor();
            cursor.skip(at).map_err(|end| TestCaseError::fail(alloc::format!("{end}")))?;
            let expected = model.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
            prop_assert_eq!(cursor.read_u16_le().ok(), expected);
            prop_assert_eq!(cursor.position(), if expected.is_some() { at + 2 } else { at });
        }
    }
    prop_assert_eq!(meter.bytes(), 0, "{:?} copied bytes", op);
    Ok(())
}

/// Runs `ops` on an empty chain of kind `B` and on an empty `Vec`, checking after each step
/// that they hold the same bytes and that the chain keeps its invariants.
fn run_chain_model<B: Segment>(ops: &[ChainOp]) -> Result<(), TestCaseError> {
    let mut chain: IoBufChain<B> = IoBufChain::new();
    let mut model = Vec::new();
    for op in ops {
        apply_chain_op(&mut chain, &mut model, op)?;
        prop_assert_eq!(chain.len(), model.len());
        prop_assert_eq!(chain_bytes(&chain), &model[..]);
        prop_assert!(chain.segments().all(|segment| !segment.is_empty()));
        prop_assert_eq!(chain.segments().map(|segment| segment.len()).sum::<usize>(), chain.len());
    }
    // The copying operations agree with the model too, and count exactly what they copy.
    let meter = ThreadCopyMeter::start();
    prop_assert_eq!(chain.to_vec(), &model[..]);
    prop_assert_eq!(meter.bytes(), model.len() as u64);
    let segments = chain.segment_count();
    prop_assert_eq!(chain.make_contiguous(), &model[..]);
    let expected = if segments > 1 { 2 * model.len() } else { model.len() };
    prop_assert_eq!(meter.bytes(), expected as u64);
    Ok(())
}

/// One operation on a unique buffer.
#[derive(Clone, Debug)]
enum BufOp {
    Advance(Index),
    Retreat(usize),
    TrimEnd(Index),
    ClaimTailroom(usize),
    FillView(u8),
    KeepBackOfSplit(Index),
    KeepFrontOfSplit(Index),
    SplitAndJoin(Index),
}

fn buf_op() -> impl Strategy<Value = BufOp> {
    prop_oneof![
        any::<Index>().prop_map(BufOp::Advance),
        (0..20usize).prop_map(BufOp::Retreat),
        any::<Index>().prop_map(BufOp::TrimEnd),
        (0..20usize).prop_map(BufOp::ClaimTailroom),
        any::<u8>().prop_map(BufOp::FillView),
        any::<Index>().prop_map(BufOp::KeepBackOfSplit),
        any::<Index>().prop_map(BufOp::KeepFrontOfSplit),
        any::<Index>().prop_map(BufOp::SplitAndJoin),
    ]
}

/// A model of a unique buffer: every byte of its region, and where the view lies in it.
struct RegionModel {
    region: Vec<u8>,
    head: usize,
    len: usize,
}

impl RegionModel {
    fn view(&self) -> &[u8] {
        &self.region[self.head..self.head + self.len]
    }

    fn tailroom(&self) -> usize {
        self.region.len() - self.head - self.len
    }
}

fn apply_buf_op(buf: &mut IoBuf, model: &mut RegionModel, op: &BufOp) -> Result<(), TestCaseError> {
    match op {
        BufOp::Advance(index) => {
            let n = index.index(model.len + 1);
            buf.advance(n);
            model.head += n;
            model.len -= n;
        }
        BufOp::Retreat(n) => {
            let fits = *n <= model.head;
            prop_assert_eq!(buf.retreat(*n).is_ok(), fits);
            if fits {
                model.head -= n;
                model.len += n;
            }
        }
        BufOp::TrimEnd(index) => {
            let n = index.index(model.len + 1);
            buf.trim_end(n);
            model.len -= n;
        }
        BufOp::ClaimTailroom(n) => {
            let fits = *n <= model.tailroom();
            prop_assert_eq!(buf.claim_tailroom(*n).is_ok(), fits);
            if fits {
                model.len += n;
            }
        }
        BufOp::FillView(byte) => {
            buf.as_mut_slice().fill(*byte);
            let (head, len) = (model.head, model.len);
            model.region[head..head + len].fill(*byte);
        }
        BufOp::KeepBackOfSplit(index) => {
            let at = index.index(model.len + 1);
            let front = buf.split_to(at);
            prop_assert_eq!(&*front, &model.view()[..at]);
            prop_assert_eq!((front.headroom(), front.tailroom()), (model.head, 0));
            model.region.drain(..model.head + at);
            model.head = 0;
            model.len -= at;
        }
        BufOp::KeepFrontOfSplit(index) => {
            let at = index.index(model.len + 1);
            let back = buf.split_off(at);
            prop_assert_eq!(&*back, &model.view()[at..]);
            prop_assert_eq!((back.headroom(), back.tailroom()), (0, model.tailroom()));
            model.region.truncate(model.head + at);
            model.len = at;
        }
        BufOp::SplitAndJoin(index) => {
            let at = index.index(model.len + 1);
            let back = buf.split_off(at);
            prop_assert!(buf.try_join(back).is_ok());
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn shared_chain_behaves_like_a_vec(ops in vec_of(chain_op(), 0..40)) {
        run_chain_model::<SharedIoBuf>(&ops)?;
    }

    #[test]
    fn unique_chain_behaves_like_a_vec(ops in vec_of(chain_op(), 0..40)) {
        run_chain_model::<IoBuf>(&ops)?;
    }

    #[test]
    fn unique_buffer_behaves_like_its_region_model(
        headroom in 0..16usize,
        bytes in vec_of(any::<u8>(), 0..32),
        tailroom in 0..16usize,
        ops in vec_of(buf_op(), 0..40),
    ) {
        let mut buf = IoBuf::with_headroom(headroom, bytes.len() + tailroom);
        buf.extend_from_slice(&bytes);
        let mut region = alloc::vec![0u8; headroom + bytes.len() + tailroom];
        region[headroom..headroom + bytes.len()].copy_from_slice(&bytes);
        let mut model = RegionModel { region, head: headroom, len: bytes.len() };
        let meter = ThreadCopyMeter::start();
        for op in &ops {
            apply_buf_op(&mut buf, &mut model, op)?;
            prop_assert_eq!(&*buf, model.view());
            prop_assert_eq!(buf.headroom(), model.head);
            prop_assert_eq!(buf.tailroom(), model.tailroom());
        }
        prop_assert_eq!(meter.bytes(), 0);
    }

    #[test]
    fn splitting_into_pieces_and_joining_them_restores_the_buffer(
        bytes in vec_of(any::<u8>(), 0..64),
        cuts in vec_of(any::<Index>(), 0..8),
    ) {
        let mut buf = IoBuf::with_headroom(3, bytes.len() + 2);
        buf.extend_from_slice(&bytes);
        let address = buf.as_ptr();
        let meter = ThreadCopyMeter::start();
        let mut pieces = Vec::new();
        for cut in &cuts {
            let at = cut.index(buf.len() + 1);
            pieces.push(buf.split_to(at));
        }
        pieces.push(buf);
        let mut pieces = pieces.into_iter();
        let mut joined = pieces.next().expect("at least the last piece");
        for piece in pieces {
            prop_assert!(joined.try_join(piece).is_ok());
        }
        prop_assert_eq!(meter.bytes(), 0);
        prop_assert_eq!(&*joined, &bytes[..]);
        prop_assert_eq!((joined.as_ptr(), joined.headroom(), joined.tailroom()), (address, 3, 2));
        prop_assert!(joined.freeze().try_into_unique().is_ok(), "every piece's reference is back");
    }

    #[test]
    fn chain_split_then_rejoined_gives_the_original_bytes(
        parts in vec_of(vec_of(any::<u8>(), 0..16), 0..8),
        at in any::<Index>(),
    ) {
        let original: Vec<u8> = parts.concat();
        let mut chain: IoBufChain = parts.iter().map(|part| segment(0, part, 0)).collect();
        let meter = ThreadCopyMeter::start();
        let at = at.index(original.len() + 1);
        let back = chain.split_off(at);
        prop_assert_eq!(chain_bytes(&chain), &original[..at]);
        prop_assert_eq!(chain_bytes(&back), &original[at..]);
        chain.append(back);
        prop_assert_eq!(meter.bytes(), 0);
        prop_assert_eq!(chain_bytes(&chain), original);
    }

    #[test]
    fn clones_and_their_splits_share_storage(
        bytes in vec_of(any::<u8>(), 1..64),
        clones in 1..8usize,
        at in any::<Index>(),
    ) {
        let original: SharedIoBuf = segment(0, &bytes, 0);
        let meter = ThreadCopyMeter::start();
        let mut copies: Vec<SharedIoBuf> = (0..clones).map(|_| original.clone()).collect();
        prop_assert_eq!(original.ref_count(), Some(clones + 1));
        for copy in &copies {
            prop_assert_eq!(copy.as_ptr(), original.as_ptr());
        }
        let at = at.index(bytes.len() + 1);
        let back = copies[0].split_off(at);
        prop_assert_eq!(back.as_ptr(), original.as_ptr().wrapping_add(at));
        prop_assert_eq!(&*back, &bytes[at..]);
        prop_assert_eq!(meter.bytes(), 0);
        drop(copies);
        drop(back);
        prop_assert_eq!(original.ref_count(), Some(1));
    }
}
