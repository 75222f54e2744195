//! The retransmission timer's value, after RFC 6298 ("Computing TCP's Retransmission Timer").
//!
//! Samples come either from the Timestamps option (RFC 7323 §4: every ACK of new data echoes
//! the TSval of the segment it acknowledges, so retransmissions are unambiguous) or, without
//! timestamps, from timing one segment at a time and discarding the sample if that segment was
//! retransmitted (Karn's algorithm, RFC 6298 §3). The connection decides which; this module
//! only does the arithmetic of RFC 6298 §2 and the backoff of §5.5.

/// The clock granularity G of RFC 6298 §2.3 (the timestamp clock ticks in milliseconds).
const GRANULARITY_NS: u64 = 1_000_000;

/// SRTT, RTTVAR and RTO of one connection (RFC 6298 §2), in nanoseconds.
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    srtt: Option<u64>,
    rttvar: u64,
    rto: u64,
    min: u64,
    max: u64,
}

impl RttEstimator {
    /// Before any sample RTO is `initial` (RFC 6298 §2.1: 1 second), clamped to `[min, max]`.
    pub(crate) fn new(initial: u64, min: u64, max: u64) -> Self {
        RttEstimator { srtt: None, rttvar: 0, rto: initial.clamp(min, max), min, max }
    }

    /// Takes one measurement R (RFC 6298 §2.2 for the first, §2.3 after it), then sets
    /// RTO = SRTT + max(G, 4·RTTVAR), clamped to `[min, max]` (§2.4, §2.5). A sample also ends
    /// any backoff (§5.7 keeps the backed-off value only until a new sample arrives).
    pub(crate) fn sample(&mut self, r: u64) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                // RTTVAR <- (1 - 1/4) * RTTVAR + 1/4 * |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'.
                self.rttvar = self.rttvar - self.rttvar / 4 + srtt.abs_diff(r) / 4;
                self.srtt = Some(srtt - srtt / 8 + r / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.rto =
            srtt.saturating_add(GRANULARITY_NS.max(4 * self.rttvar)).clamp(self.min, self.max);
    }

    /// Doubles RTO after the timer expires (RFC 6298 §5.5), up to the maximum.
    pub(crate) fn backoff(&mut self) {
        self.rto = self.rto.saturating_mul(2).min(self.max);
    }

    /// The current retransmission timeout.
    pub(crate) fn rto(&self) -> u64 {
        self.rto
    }

    /// The smoothed round-trip time, once there is a sample.
    pub(crate) fn srtt(&self) -> Option<u64> {
        self.srtt
    }

    /// The round-trip time variation.
    pub(crate) fn rttvar(&self) -> u64 {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn first_sample_and_smoothing() {
        let mut rtt = RttEstimator::new(1000 * MS, 200 * MS, 60_000 * MS);
        assert_eq!(rtt.rto(), 1000 * MS);
        rtt.sample(100 * MS);
        // SRTT = 100, RTTVAR = 50, RTO = 100 + 200 = 300.
        assert_eq!(rtt.srtt(), Some(100 * MS));
        assert_eq!(rtt.rto(), 300 * MS);
        rtt.sample(100 * MS);
        // RTTVAR = 37.5, SRTT = 100, RTO = 250.
        assert_eq!(rtt.rttvar(), 37_500_000);
        assert_eq!(rtt.rto(), 250 * MS);
        for _ in 0..50 {
            rtt.sample(10 * MS);
        }
        assert_eq!(rtt.rto(), 200 * MS, "clamped to the minimum");
    }

    #[test]
    fn backoff_doubles_up_to_max_and_a_sample_resets_it() {
        let mut rtt = RttEstimator::new(1000 * MS, 200 * MS, 5000 * MS);
        rtt.backoff();
        assert_eq!(rtt.rto(), 2000 * MS);
        rtt.backoff();
        rtt.backoff();
        assert_eq!(rtt.rto(), 5000 * MS);
        rtt.sample(100 * MS);
        assert_eq!(rtt.rto(), 300 * MS);
    }
}
