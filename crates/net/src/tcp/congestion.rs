//! Congestion control: slow start and congestion avoidance (RFC 5681 §3.1), fast retransmit
//! and NewReno fast recovery (RFC 5681 §3.2 as modified by RFC 6582), with the initial window of
//! RFC 6928. The congestion window is kept in bytes.
//!
//! The connection calls [`NewReno::on_new_ack`] for an ACK that advances SND.UNA,
//! [`NewReno::on_duplicate_ack`] for a duplicate ACK as RFC 5681 §2 defines it, and
//! [`NewReno::on_timeout`] when the retransmission timer expires; they say when the first
//! unacknowledged segment must be resent at once.
//!
//! With SACK (RFC 6675) the connection decides when recovery starts, from its scoreboard, and
//! calls [`NewReno::enter_recovery`]; the window is then not inflated by duplicates, because
//! the connection sends by its estimate of the data in the network ("pipe") instead.
//!
//! A recovery found spurious (the Eifel detection of RFC 3522, by timestamps: the ACK for the
//! retransmitted data echoes the original transmission) is undone as RFC 4015 suggests, and
//! the duplicate threshold grows with the reordering seen, as Linux does with its reordering
//! metric, so a path that reorders stops triggering needless retransmissions.

/// The number of duplicate ACKs that triggers fast retransmit (RFC 5681 §3.2), before any
/// reordering has been seen.
pub(crate) const DUPACK_THRESHOLD: u32 = 3;

/// The highest the duplicate threshold grows on a reordering path (Linux's tcp_max_reordering).
const MAX_DUPACK_THRESHOLD: u32 = 300;

/// The state of RFC 5681/6582 congestion control for one connection.
#[derive(Debug, Clone)]
pub(crate) struct NewReno {
    mss: u64,
    cwnd: u64,
    ssthresh: u64,
    dupacks: u32,
    /// RFC 6582's "recover": the send position just past the highest octet sent when the last
    /// recovery (or timeout) began.
    recover: i64,
    in_recovery: bool,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance (RFC 5681 §3.1, the
    /// byte-counting variant of equation 3).
    acked_in_ca: u64,
    /// SACK-based recovery (RFC 6675): no window inflation, no partial-ACK retransmission.
    sack: bool,
    /// The duplicate threshold in segments, raised when reordering is detected.
    dupthresh: u32,
    /// cwnd and ssthresh before the current recovery began, for undoing it (RFC 4015 §3.2).
    prior: Option<(u64, u64)>,
}

/// What the connection must do after an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckAction {
    /// Nothing beyond sending what the window now allows.
    None,
    /// Retransmit the first unacknowledged segment now (fast retransmit, or a partial ACK in
    /// fast recovery).
    RetransmitFirst,
}

impl NewReno {
    /// A fresh connection: cwnd = IW = min(10·MSS, max(2·MSS, 14600)) (RFC 6928 §2), ssthresh
    /// arbitrarily high (RFC 5681 §3.1).
    pub(crate) fn new(mss: usize) -> Self {
        let mss = mss.max(1) as u64;
        NewReno {
            mss,
            cwnd: (10 * mss).min((2 * mss).max(14_600)),
            ssthresh: u64::MAX / 2,
            dupacks: 0,
            recover: 0,
            in_recovery: false,
            acked_in_ca: 0,
            sack: false,
            dupthresh: DUPACK_THRESHOLD,
            prior: None,
        }
    }

    /// Sets the sender MSS once the handshake fixed it, re-deriving the initial window if no
    /// data has been acknowledged yet, and whether SACK-based recovery is used.
    pub(crate) fn set_mss(&mut self, mss: usize, sack: bool) {
        *self = NewReno { recover: self.recover, sack, ..NewReno::new(mss) };
    }

    /// The duplicate threshold (RFC 5681 §3.2's three, or more after reordering was seen).
    pub(crate) fn dupthresh(&self) -> u32 {
        self.dupthresh
    }

    /// RFC 6582's "recover": no new recovery may begin until SND.UNA reaches it.
    pub(crate) fn recover(&self) -> i64 {
        self.recover
    }

    /// Duplicate ACKs counted since SND.UNA last advanced.
    pub(crate) fn dupacks(&self) -> u32 {
        self.dupacks
    }

    /// Starts fast recovery: ssthresh = max(FlightSize / 2, 2·SMSS) (RFC 5681 equation 4),
    /// remembering the old values for an undo. With SACK cwnd = ssthresh (RFC 6675 §5 step
    /// 4.2); without, it is inflated by the three segments that left the network (RFC 5681
    /// §3.2 step 3).
    pub(crate) fn enter_recovery(&mut self, flight: u64, snd_max: i64) {
        self.prior = Some((self.cwnd, self.ssthresh));
        self.halve(flight);
        self.recover = snd_max;
        self.in_recovery = true;
        self.cwnd = if self.sack { self.ssthresh } else { self.ssthresh + 3 * self.mss };
    }

    /// The recovery turned out spurious (RFC 3522 detection): restore the window as it was
    /// before (RFC 4015 §3.2), let a new recovery begin from `snd_una`, and raise the
    /// duplicate threshold to `reordering` segments, the extent of the reordering seen.
    pub(crate) fn undo(&mut self, snd_una: i64, reordering: u32) {
        if let Some((cwnd, ssthresh)) = self.prior.take() {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = self.ssthresh.max(ssthresh);
        }
        self.in_recovery = false;
        self.recover = snd_una;
        self.dupacks = 0;
        self.acked_in_ca = 0;
        self.dupthresh =
            reordering.max(self.dupthresh + 1).clamp(DUPACK_THRESHOLD, MAX_DUPACK_THRESHOLD);
    }

    /// The congestion window in bytes.
    pub(crate) fn cwnd(&self) -> u64 {
        self.cwnd
    }

    /// The slow start threshold in bytes.
    pub(crate) fn ssthresh(&self) -> u64 {
        self.ssthresh
    }

    /// Whether fast recovery is in progress.
    pub(crate) fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// RFC 5681 equation 4: ssthresh = max(FlightSize / 2, 2·SMSS).
    fn halve(&mut self, flight: u64) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
    }

    /// An ACK advanced SND.UNA by `acked` to `snd_una`; `flight` is what is still outstanding.
    pub(crate) fn on_new_ack(&mut self, acked: u64, snd_una: i64, flight: u64) -> AckAction {
        self.dupacks = 0;
        if self.in_recovery {
            if snd_una >= self.recover {
                // Full acknowledgment (RFC 6582 §3.2 step 3): deflate to
                // min(ssthresh, max(FlightSize, SMSS) + SMSS). With SACK, the window is
                // ssthresh already.
                self.in_recovery = false;
                self.cwnd = self.ssthresh.min(flight.max(self.mss) + self.mss);
                self.acked_in_ca = 0;
                return AckAction::None;
            }
            if self.sack {
                // RFC 6675: the scoreboard says what to resend; the window stays.
                return AckAction::None;
            }
            // Partial acknowledgment (RFC 6582 §3.2 step 4): retransmit the next hole, deflate
            // by the amount acknowledged and add back one SMSS if that was at least one SMSS.
            self.cwnd = self.cwnd.saturating_sub(acked).max(self.mss);
            if acked >= self.mss {
                self.cwnd += self.mss;
            }
            return AckAction::RetransmitFirst;
        }
        if self.cwnd < self.ssthresh {
            // Slow start (RFC 5681 §3.1 equation 2, with RFC 3465's L = 2·SMSS limit).
            self.cwnd += acked.min(2 * self.mss);
        } else {
            // Congestion avoidance: one SMSS per cwnd of acknowledged bytes.
            self.acked_in_ca += acked;
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
        AckAction::None
    }

    /// A duplicate ACK arrived (RFC 5681 §2's definition); `snd_una`/`snd_max` bound what is
    /// outstanding and `flight` = snd_max − snd_una in bytes.
    pub(crate) fn on_duplicate_ack(
        &mut self,
        snd_una: i64,
        snd_max: i64,
        flight: u64,
    ) -> AckAction {
        self.dupacks = self.dupacks.saturating_add(1);
        if self.sack {
            // The connection decides from its scoreboard (RFC 6675 §5).
            return AckAction::None;
        }
        if self.in_recovery {
            // RFC 6582 §3.2 step 3 (RFC 5681 §3.2 step 4): inflate by one SMSS per duplicate.
            self.cwnd += self.mss;
            return AckAction::None;
        }
        // RFC 6582 §3.2 step 2: enter fast retransmit only if the ACK covers more than
        // "recover", so duplicates caused by an earlier episode's retransmissions do not
        // trigger another halving.
        if self.dupacks == self.dupthresh && snd_una >= self.recover {
            self.enter_recovery(flight, snd_max);
            return AckAction::RetransmitFirst;
        }
        AckAction::None
    }

    /// The retransmission timer expired (RFC 5681 §3.1 equation 4 and the loss window of one
    /// SMSS; RFC 6582 §4 sets recover to the highest sequence sent).
    pub(crate) fn on_timeout(&mut self, flight: u64, snd_max: i64, first_expiry: bool) {
        if first_expiry {
            self.halve(flight);
        }
        self.cwnd = self.mss;
        self.recover = snd_max;
        self.in_recovery = false;
        self.dupacks = 0;
        self.acked_in_ca = 0;
        self.prior = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_is_rfc6928() {
        assert_eq!(NewReno::new(1460).cwnd(), 14_600);
        assert_eq!(NewReno::new(536).cwnd(), 5_360);
        assert_eq!(NewReno::new(9000).cwnd(), 18_000);
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut cc = NewReno::new(1000);
        assert_eq!(cc.on_new_ack(1000, 1001, 0), AckAction::None);
        assert_eq!(cc.cwnd(), 11_000);
        cc.on_timeout(20_000, 20_001, true);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (1000, 10_000));
        while cc.cwnd() < cc.ssthresh() {
            cc.on_new_ack(1000, 30_000, 0);
        }
        assert_eq!(cc.cwnd(), 10_000);
        // Ten full-sized ACKs in avoidance add one MSS.
        for _ in 0..10 {
            cc.on_new_ack(1000, 30_000, 0);
        }
        assert_eq!(cc.cwnd(), 11_000);
    }

    #[test]
    fn newreno_recovery_with_partial_and_full_acks() {
        let mut cc = NewReno::new(1000);
        // 10 segments outstanding: una 1, max 10_001.
        assert_eq!(cc.on_duplicate_ack(1, 10_001, 10_000), AckAction::None);
        assert_eq!(cc.on_duplicate_ack(1, 10_001, 10_000), AckAction::None);
        assert_eq!(cc.on_duplicate_ack(1, 10_001, 10_000), AckAction::RetransmitFirst);
        assert!(cc.in_recovery());
        assert_eq!((cc.ssthresh(), cc.cwnd()), (5000, 8000));
        cc.on_duplicate_ack(1, 10_001, 10_000);
        assert_eq!(cc.cwnd(), 9000);
        // A partial ACK of two segments: retransmit, deflate by 2000, add one MSS.
        assert_eq!(cc.on_new_ack(2000, 2001, 8000), AckAction::RetransmitFirst);
        assert_eq!(cc.cwnd(), 8000);
        // The full ACK ends recovery.
        assert_eq!(cc.on_new_ack(8000, 10_001, 0), AckAction::None);
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), 2000);
        // Duplicates that do not cover recover again do not start another episode.
        let mut cc2 = NewReno::new(1000);
        cc2.on_timeout(5000, 5001, true);
        for _ in 0..3 {
            assert_eq!(cc2.on_duplicate_ack(3001, 5001, 2000), AckAction::None);
        }
    }

    #[test]
    fn sack_recovery_keeps_the_window_and_undo_restores_it() {
        let mut cc = NewReno::new(1000);
        cc.set_mss(1000, true);
        for _ in 0..20 {
            cc.on_new_ack(1000, 1, 0);
        }
        assert_eq!(cc.cwnd(), 30_000);
        for _ in 0..5 {
            assert_eq!(cc.on_duplicate_ack(1, 30_001, 30_000), AckAction::None);
        }
        assert!(!cc.in_recovery(), "with SACK the connection starts recovery");
        cc.enter_recovery(30_000, 30_001);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (15_000, 15_000));
        cc.on_duplicate_ack(1, 30_001, 30_000);
        assert_eq!(cc.on_new_ack(5000, 5001, 25_000), AckAction::None, "partial ACK");
        assert_eq!(cc.cwnd(), 15_000, "no inflation or deflation");
        cc.undo(5001, 12);
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), 30_000);
        assert_eq!(cc.dupthresh(), 12);
        assert_eq!(cc.recover(), 5001);
        cc.undo(5001, 2);
        assert_eq!(cc.dupthresh(), 13, "each spurious episode raises it by one at least");
    }
}
