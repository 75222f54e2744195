//! The sender's SACK scoreboard (RFC 2018 §5, RFC 6675 §3-4): which data beyond SND.UNA the
//! receiver says it holds, and from that which holes count as lost (`IsLost`), how much is
//! still in the network (`SetPipe`) and which hole to retransmit next (`NextSeg`).
//!
//! Positions are send-side sequence positions (see [`super::seq`]). The scoreboard keeps
//! disjoint, sorted, merged ranges; it is bounded in ranges, and when full the highest range
//! is given up (the receiver repeats it in later ACKs if it still matters).

use alloc::vec::Vec;

/// The most ranges kept. The receiver reports at most four blocks per ACK; holes beyond this
/// many are rare and only cost a retransmission of data the receiver already has.
const MAX_RANGES: usize = 64;

/// SACKed ranges `[start, end)` of one connection's send sequence space.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scoreboard {
    ranges: Vec<(i64, i64)>,
}

impl Scoreboard {
    /// Whether nothing beyond SND.UNA is SACKed.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Forgets everything (after a retransmission timeout, RFC 2018 §8: the receiver may have
    /// reneged).
    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Drops what is at or below the cumulative ACK `una`.
    pub(crate) fn trim(&mut self, una: i64) {
        let gone = self.ranges.partition_point(|&(_, end)| end <= una);
        self.ranges.drain(..gone);
        if let Some(first) = self.ranges.first_mut() {
            first.0 = first.0.max(una);
        }
    }

    /// Records a block the receiver reported, if it lies within `(una, max]`; returns the
    /// number of bytes newly marked. Blocks outside that range (D-SACKs of old data, or
    /// nonsense) are ignored.
    pub(crate) fn add(&mut self, start: i64, end: i64, una: i64, max: i64) -> u64 {
        if !(una < start && start < end && end <= max) {
            return 0;
        }
        // The ranges that touch or overlap [start, end) merge with it.
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        let (mut lo, mut hi) = (start, end);
        if first < last {
            lo = lo.min(self.ranges[first].0);
            hi = hi.max(self.ranges[last - 1].1);
        }
        let merged: i64 = self.ranges[first..last].iter().map(|&(s, e)| e - s).sum();
        let mut newly = (hi - lo - merged) as u64;
        self.ranges.splice(first..last, [(lo, hi)]);
        if self.ranges.len() > MAX_RANGES {
            if let Some((s, e)) = self.ranges.pop() {
                newly = newly.saturating_sub((e - s) as u64);
            }
        }
        newly
    }

    /// Total bytes SACKed.
    #[cfg(test)]
    pub(crate) fn sacked_bytes(&self) -> u64 {
        self.ranges.iter().map(|&(s, e)| (e - s) as u64).sum()
    }

    /// The end of the highest SACKed range (RFC 6675's "highest octet SACKed" plus one).
    pub(crate) fn highest(&self) -> Option<i64> {
        self.ranges.last().map(|&(_, end)| end)
    }

    /// The position below which every unSACKed octet counts as lost: RFC 6675 §4 `IsLost`
    /// holds for an octet when at least `dupthresh` SACKed ranges lie above it, or more than
    /// `(dupthresh − 1) · mss` SACKed bytes do. An unSACKed octet is never inside a range, so
    /// the ranges above it are whole, and the limit is the start of the range at which,
    /// counting down from the top, either condition first holds.
    pub(crate) fn lost_limit(&self, dupthresh: u32, mss: usize) -> Option<i64> {
        let byte_limit = u64::from(dupthresh.saturating_sub(1)) * mss as u64;
        let mut bytes = 0u64;
        for (count, &(start, end)) in self.ranges.iter().rev().enumerate() {
            bytes += (end - start) as u64;
            if count + 1 >= dupthresh as usize || bytes > byte_limit {
                return Some(start);
            }
        }
        None
    }

    /// Whether the octet at `pos` counts as lost (RFC 6675 `IsLost`).
    pub(crate) fn is_lost(&self, pos: i64, dupthresh: u32, mss: usize) -> bool {
        self.lost_limit(dupthresh, mss).is_some_and(|limit| pos < limit) && !self.is_sacked(pos)
    }

    /// Whether the octet at `pos` is SACKed.
    pub(crate) fn is_sacked(&self, pos: i64) -> bool {
        let index = self.ranges.partition_point(|&(_, end)| end <= pos);
        self.ranges.get(index).is_some_and(|&(start, _)| start <= pos)
    }

    /// UnSACKed bytes in `[from, to)`.
    fn holes_between(&self, from: i64, to: i64) -> u64 {
        if to <= from {
            return 0;
        }
        let sacked: i64 = self.ranges.iter().map(|&(s, e)| (e.min(to) - s.max(from)).max(0)).sum();
        (to - from - sacked) as u64
    }

    /// RFC 6675 §4 `SetPipe`: the bytes the sender estimates are still in the network. An
    /// unSACKed octet in `[una, max)` counts once unless it is lost (below `lost_limit`, as
    /// [`Scoreboard::lost_limit`] gives it), and once more if it was retransmitted;
    /// retransmissions go in order, so those are the unSACKed octets below `high_rxt`.
    pub(crate) fn pipe(&self, una: i64, max: i64, high_rxt: i64, lost_limit: Option<i64>) -> u64 {
        let lost_to = lost_limit.unwrap_or(una).clamp(una, max);
        self.holes_between(lost_to, max) + self.holes_between(una, high_rxt.min(max))
    }

    /// The first unSACKed stretch starting at or after `from` and before `limit`: its start and
    /// its end (the next SACKed range or `limit`, whichever comes first). RFC 6675 `NextSeg`
    /// rules 1 and 3 take their segment from it.
    pub(crate) fn next_hole(&self, from: i64, limit: i64) -> Option<(i64, i64)> {
        let mut at = from;
        let mut index = self.ranges.partition_point(|&(_, end)| end <= at);
        while let Some(&(start, end)) = self.ranges.get(index) {
            if at < start {
                break;
            }
            at = end;
            index += 1;
        }
        if at >= limit {
            return None;
        }
        let end = self.ranges.get(index).map_or(limit, |&(start, _)| start.min(limit));
        Some((at, end))
    }

    /// The start of the first SACKed range after `pos`, if any.
    pub(crate) fn next_sacked(&self, pos: i64) -> Option<i64> {
        let index = self.ranges.partition_point(|&(start, _)| start <= pos);
        self.ranges.get(index).map(|&(start, _)| start)
    }

    /// The ranges, for checks.
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> &[(i64, i64)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_and_trims() {
        let mut sb = Scoreboard::default();
        assert_eq!(sb.add(100, 200, 1, 1000), 100);
        assert_eq!(sb.add(300, 400, 1, 1000), 100);
        assert_eq!(sb.add(150, 300, 1, 1000), 100, "fills the gap between them");
        assert_eq!(sb.ranges(), [(100, 400)]);
        assert_eq!(sb.add(0, 50, 1, 1000), 0, "at or below SND.UNA is ignored");
        assert_eq!(sb.add(900, 1100, 1, 1000), 0, "beyond SND.MAX is ignored");
        assert_eq!(sb.add(500, 600, 1, 1000), 100);
        sb.trim(250);
        assert_eq!(sb.ranges(), [(250, 400), (500, 600)]);
        sb.trim(450);
        assert_eq!(sb.ranges(), [(500, 600)]);
        assert!(sb.is_sacked(500) && !sb.is_sacked(600) && !sb.is_sacked(499));
        assert_eq!(sb.next_sacked(450), Some(500));
        assert_eq!(sb.next_sacked(500), None);
    }

    #[test]
    fn is_lost_follows_rfc6675() {
        // MSS 100, segments 1..=10 sent ([1, 1001)); segment 1 lost, 2 and 3 SACKed.
        let mut sb = Scoreboard::default();
        sb.add(101, 301, 1, 1001);
        assert!(!sb.is_lost(1, 3, 100), "200 bytes above is not more than 2·MSS");
        sb.add(301, 302, 1, 1001);
        assert!(sb.is_lost(1, 3, 100), "201 bytes above is");
        // Three separate ranges above also make it lost, however short.
        let mut sb = Scoreboard::default();
        for start in [201, 401, 601] {
            sb.add(start, start + 10, 1, 1001);
        }
        assert_eq!(sb.lost_limit(3, 100), Some(201));
        assert!(sb.is_lost(1, 3, 100) && !sb.is_lost(211, 3, 100));
        // Pipe: [1, 201) lost (200), [211, 401) and the rest not lost; nothing retransmitted.
        let flight = 1000 - 30;
        let lost = sb.lost_limit(3, 100);
        assert_eq!(sb.pipe(1, 1001, 1, lost), flight - 200);
        // After retransmitting [1, 101) it counts again.
        assert_eq!(sb.pipe(1, 1001, 101, lost), flight - 100);
    }

    #[test]
    fn next_hole_skips_sacked_ranges() {
        let mut sb = Scoreboard::default();
        sb.add(101, 201, 1, 1001);
        sb.add(301, 401, 1, 1001);
        assert_eq!(sb.next_hole(1, 1001), Some((1, 101)));
        assert_eq!(sb.next_hole(101, 1001), Some((201, 301)));
        assert_eq!(sb.next_hole(250, 1001), Some((250, 301)));
        assert_eq!(sb.next_hole(301, 1001), Some((401, 1001)));
        assert_eq!(sb.next_hole(301, 401), None);
        assert_eq!(sb.next_hole(1, 50), Some((1, 50)));
    }

    proptest! {
        /// Against a bitmap model: the ranges stay sorted, disjoint and merged, and every
        /// query agrees with the bytes actually marked.
        #[test]
        fn agrees_with_a_bitmap(
            blocks in proptest::collection::vec((0i64..200, 1i64..40), 0..30),
            una in 0i64..100,
            probe in 0i64..250,
        ) {
            let max = 240;
            let mut sb = Scoreboard::default();
            let mut model = [false; 250];
            for (start, len) in blocks {
                let end = start + len;
                let added = sb.add(start, end, 0, max);
                let mut fresh = 0;
                if 0 < start && end <= max {
                    for bit in &mut model[start as usize..end as usize] {
                        fresh += u64::from(!*bit);
                        *bit = true;
                    }
                }
                prop_assert_eq!(added, fresh);
            }
            sb.trim(una);
            for bit in &mut model[..una as usize] {
                *bit = false;
            }
            for pair in sb.ranges().windows(2) {
                prop_assert!(pair[0].1 < pair[1].0, "{:?}", sb.ranges());
            }
            for pos in 0..250 {
                prop_assert_eq!(sb.is_sacked(pos), model[pos as usize]);
            }
            prop_assert_eq!(sb.sacked_bytes(), model.iter().filter(|b| **b).count() as u64);
            if let Some((start, end)) = sb.next_hole(probe, max) {
                prop_assert!(start >= probe && start < end && end <= max);
                for pos in start..end {
                    prop_assert!(!model[pos as usize]);
                }
                for pos in probe..start {
                    prop_assert!(model[pos as usize]);
                }
            } else {
                for pos in probe..max {
                    prop_assert!(model[pos as usize]);
                }
            }
        }
    }
}
