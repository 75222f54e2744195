//! Adaptive polling: when a device should interrupt and when its core should poll it.
//!
//! The EbbRT paper's Event Manager section describes the policy: a device is programmed to
//! raise an interrupt per event (here: the core blocks, in `io_uring_enter` when hosted or `hlt`
//! natively, until the device has something), and each event is processed to completion. When
//! the event rate passes a threshold, interrupts cost more than they save, so the driver
//! installs an idle handler that polls the device instead, and returns to interrupts when the
//! rate falls again. [`AdaptivePoller`] is that decision, kept apart from any device: the driver
//! feeds it timestamps and event counts and asks it what to do. It makes no OS calls.
//!
//! # Estimator
//!
//! The rate is measured over tumbling windows. A window opens at some `record` call and closes
//! at the first `record` at least [`PollingConfig::window_ns`] later; its rate is the number of
//! events recorded after it opened divided by its actual length, and the next window opens
//! where it closed. A stretch with no `record` calls at all (the core was blocked, or it only
//! ran its idle handlers and nothing arrived) simply makes the current window longer, so a
//! quiet period lowers the estimate as it should. A `record` costs a few additions and
//! comparisons; closing a window adds a few 128-bit multiplications and one division.
//!
//! # Hysteresis
//!
//! Switching to polling takes a window whose rate is at least
//! [`PollingConfig::enter_rate_per_s`]; switching back takes a window whose rate is below the
//! lower [`PollingConfig::exit_rate_per_s`]. A device whose rate wanders between the two keeps
//! its mode, so the core does not flap between interrupts and polling.
//!
//! # Idle spinning
//!
//! Polling burns the core even when nothing comes. In polling mode,
//! [`AdaptivePoller::should_block`] turns true once no event has arrived for
//! [`PollingConfig::idle_spin_ns`]; the event loop then re-arms the device's interrupt and
//! blocks. The mode stays `Polling`: if the quiet spell was short, traffic resumes in polling
//! mode at once; if it was long, the window that spans it shows a low rate and the device goes
//! back to interrupts at the next window close.

/// Thresholds and time constants of an [`AdaptivePoller`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollingConfig {
    /// Switch from interrupts to polling when a window's rate reaches this many events per
    /// second.
    pub enter_rate_per_s: u64,
    /// Switch from polling back to interrupts when a window's rate falls below this many
    /// events per second. Should be below `enter_rate_per_s`; the gap is the hysteresis.
    pub exit_rate_per_s: u64,
    /// The minimum length of a measurement window, in nanoseconds.
    pub window_ns: u64,
    /// In polling mode, how long the core may poll without seeing an event before it should
    /// block instead, in nanoseconds.
    pub idle_spin_ns: u64,
}

impl Default for PollingConfig {
    /// Poll above 10,000 events/s, return to interrupts below 2,000 events/s, measure over
    /// 1 ms windows, and stop spinning after 100 µs without an event.
    fn default() -> Self {
        PollingConfig {
            enter_rate_per_s: 10_000,
            exit_rate_per_s: 2_000,
            window_ns: 1_000_000,
            idle_spin_ns: 100_000,
        }
    }
}

/// How a device is being serviced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PollMode {
    /// The device interrupts (or completes a blocking wait) per event; the core may block.
    Blocking,
    /// An idle handler polls the device on every turn of the event loop.
    Polling,
}

/// The adaptive polling policy for one device on one core. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct AdaptivePoller {
    config: PollingConfig,
    mode: PollMode,
    /// When the current window opened; `None` before the first `record`.
    window_start_ns: Option<u64>,
    /// Events recorded since the window opened.
    window_events: u64,
    /// The rate of the last closed window, in events per second.
    last_rate_per_s: u64,
    /// When an event was last recorded (or polling mode was entered).
    last_event_ns: u64,
    /// How many times the mode has changed.
    switches: u64,
}

impl AdaptivePoller {
    /// A poller in [`PollMode::Blocking`] with no history.
    pub fn new(config: PollingConfig) -> Self {
        AdaptivePoller {
            config,
            mode: PollMode::Blocking,
            window_start_ns: None,
            window_events: 0,
            last_rate_per_s: 0,
            last_event_ns: 0,
            switches: 0,
        }
    }

    /// The configuration this poller was made with.
    pub fn config(&self) -> &PollingConfig {
        &self.config
    }

    /// The current mode.
    pub fn mode(&self) -> PollMode {
        self.mode
    }

    /// How many times the mode has changed since creation.
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// The event rate measured over the last closed window, in events per second (0 before
    /// the first window closes).
    pub fn rate_per_s(&self) -> u64 {
        self.last_rate_per_s
    }

    /// Records that a poll (or a wakeup) at `now_ns` found `events` events; call it after every
    /// poll in polling mode and after every wakeup in blocking mode, with a monotonic clock.
    ///
    /// Closes the measurement window when it has lasted `window_ns` and switches mode if the
    /// window's rate crosses the threshold for the current mode. The events of the very first
    /// call open the first window and are not counted, since the interval they arrived in is
    /// unknown.
    pub fn record(&mut self, now_ns: u64, events: usize) {
        let events = events as u64;
        if events > 0 {
            self.last_event_ns = now_ns;
        }
        let Some(start) = self.window_start_ns else {
            self.window_start_ns = Some(now_ns);
            return;
        };
        self.window_events = self.window_events.saturating_add(events);
        let elapsed = now_ns.saturating_sub(start);
        if elapsed == 0 || elapsed < self.config.window_ns {
            return;
        }
        // rate = events / elapsed s = events * 1e9 / elapsed ns; compare without dividing.
        let scaled = u128::from(self.window_events) * 1_000_000_000;
        let rate_at_least = |per_s: u64| scaled >= u128::from(per_s) * u128::from(elapsed);
        self.last_rate_per_s = u64::try_from(scaled / u128::from(elapsed)).unwrap_or(u64::MAX);
        match self.mode {
            PollMode::Blocking if rate_at_least(self.config.enter_rate_per_s) => {
                self.mode = PollMode::Polling;
                self.switches += 1;
                // Start the idle-spin budget now, not at some older event.
                self.last_event_ns = now_ns;
            }
            PollMode::Polling if !rate_at_least(self.config.exit_rate_per_s) => {
                self.mode = PollMode::Blocking;
                self.switches += 1;
            }
            _ => {}
        }
        self.window_start_ns = Some(now_ns);
        self.window_events = 0;
    }

    /// Whether the core should block (wait for an interrupt) rather than keep polling, at
    /// `now_ns`.
    ///
    /// Always `true` in [`PollMode::Blocking`]. In [`PollMode::Polling`], `true` once no event
    /// has been recorded for longer than `idle_spin_ns`: the device has gone quiet, so the core
    /// should re-arm its interrupt and block rather than spin.
    pub fn should_block(&self, now_ns: u64) -> bool {
        match self.mode {
            PollMode::Blocking => true,
            PollMode::Polling => {
                now_ns.saturating_sub(self.last_event_ns) > self.config.idle_spin_ns
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;

    /// Feeds `poller` one event every `period_ns` from `start` for `duration_ns`, with empty
    /// polls every `poll_ns` in between (as the idle handler would in polling mode). Returns the
    /// time reached.
    fn feed(
        poller: &mut AdaptivePoller,
        start: u64,
        duration_ns: u64,
        period_ns: u64,
        poll_ns: u64,
    ) -> u64 {
        let mut now = start;
        let mut next_event = start;
        while now < start + duration_ns {
            if now >= next_event {
                poller.record(now, 1);
                next_event += period_ns;
            } else {
                poller.record(now, 0);
            }
            now += poll_ns.min(next_event - now).max(1);
        }
        now
    }

    #[test]
    fn default_config_is_sane() {
        let config = PollingConfig::default();
        assert!(config.exit_rate_per_s < config.enter_rate_per_s);
        assert!(config.window_ns > 0);
        assert!(config.idle_spin_ns > 0 && config.idle_spin_ns < config.window_ns);
        let poller = AdaptivePoller::new(config);
        assert_eq!(poller.mode(), PollMode::Blocking);
        assert_eq!(poller.switches(), 0);
        assert_eq!(poller.rate_per_s(), 0);
        assert!(poller.should_block(0));
    }

    #[test]
    fn steady_high_rate_switches_to_polling() {
        let mut poller = AdaptivePoller::new(PollingConfig::default());
        // 50,000 events/s, one per wakeup.
        let now = feed(&mut poller, 0, 3 * MS, 20 * US, 20 * US);
        assert_eq!(poller.mode(), PollMode::Polling);
        assert_eq!(poller.switches(), 1);
        assert!((45_000..=55_000).contains(&poller.rate_per_s()), "{}", poller.rate_per_s());
        assert!(!poller.should_block(now));
    }

    #[test]
    fn low_rate_returns_to_blocking() {
        let mut poller = AdaptivePoller::new(PollingConfig::default());
        let now = feed(&mut poller, 0, 3 * MS, 20 * US, 20 * US);
        assert_eq!(poller.mode(), PollMode::Polling);
        // 1,000 events/s, with the idle handler polling every 10 us in between.
        feed(&mut poller, now, 5 * MS, MS, 10 * US);
        assert_eq!(poller.mode(), PollMode::Blocking);
        assert_eq!(poller.switches(), 2);
        assert!(poller.rate_per_s() < 2_000);
    }

    #[test]
    fn hysteresis_holds_mode_between_thresholds() {
        // 5,000 events/s lies between exit (2,000) and enter (10,000).
        let mut blocking = AdaptivePoller::new(PollingConfig::default());
        feed(&mut blocking, 0, 100 * MS, 200 * US, 200 * US);
        assert_eq!(blocking.mode(), PollMode::Blocking);
        assert_eq!(blocking.switches(), 0);

        let mut polling = AdaptivePoller::new(PollingConfig::default());
        let now = feed(&mut polling, 0, 3 * MS, 20 * US, 20 * US);
        assert_eq!(polling.mode(), PollMode::Polling);
        feed(&mut polling, now, 100 * MS, 200 * US, 10 * US);
        assert_eq!(polling.mode(), PollMode::Polling);
        assert_eq!(polling.switches(), 1);
    }

    #[test]
    fn rate_wobbling_between_thresholds_does_not_flap() {
        let mut poller = AdaptivePoller::new(PollingConfig::default());
        let mut now = feed(&mut poller, 0, 3 * MS, 20 * US, 20 * US);
        assert_eq!(poller.mode(), PollMode::Polling);
        // Alternate spells at 8,000/s and 4,000/s: both between the thresholds.
        for round in 0..50 {
            let period = if round % 2 == 0 { 125 * US } else { 250 * US };
            now = feed(&mut poller, now, 2 * MS, period, 10 * US);
        }
        assert_eq!(poller.mode(), PollMode::Polling);
        assert_eq!(poller.switches(), 1);
    }

    #[test]
    fn idle_in_polling_mode_says_block() {
        let config = PollingConfig::default();
        let mut poller = AdaptivePoller::new(config);
        let now = feed(&mut poller, 0, 3 * MS, 20 * US, 20 * US);
        assert_eq!(poller.mode(), PollMode::Polling);
        let last_event = now - 20 * US;
        // Empty polls: keep spinning within the budget, then block.
        let mut t = now;
        while t <= last_event + config.idle_spin_ns {
            poller.record(t, 0);
            assert!(!poller.should_block(t), "blocked after {} ns idle", t - last_event);
            t += 5 * US;
        }
        poller.record(t, 0);
        assert!(poller.should_block(t));
        assert_eq!(poller.mode(), PollMode::Polling, "a short quiet spell keeps polling mode");
        // An event resets the budget.
        poller.record(t + US, 1);
        assert!(!poller.should_block(t + 2 * US));
    }

    #[test]
    fn burst_after_idle_goes_back_to_polling_quickly() {
        let config = PollingConfig::default();
        let mut poller = AdaptivePoller::new(config);
        let now = feed(&mut poller, 0, 3 * MS, 20 * US, 20 * US);
        assert_eq!(poller.mode(), PollMode::Polling);
        // The core blocks for 50 ms: no records at all. Then a burst at 100,000 events/s.
        let burst_start = now + 50 * MS;
        let mut t = burst_start;
        while poller.mode() != PollMode::Polling || poller.switches() < 3 {
            poller.record(t, 1);
            t += 10 * US;
            assert!(t - burst_start <= 3 * config.window_ns, "took too long to poll again");
        }
        // The window spanning the quiet spell dropped to interrupts; the next window of the
        // burst returned to polling.
        assert_eq!(poller.switches(), 3);
        assert!(t - burst_start <= config.window_ns + 20 * US);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let mut poller = AdaptivePoller::new(PollingConfig {
            enter_rate_per_s: 1,
            exit_rate_per_s: 0,
            window_ns: 0,
            idle_spin_ns: 0,
        });
        poller.record(10, usize::MAX);
        poller.record(10, usize::MAX);
        poller.record(5, 3); // time going backwards
        poller.record(u64::MAX, usize::MAX);
        assert_eq!(poller.mode(), PollMode::Polling);
        // An exit threshold of 0 means never leaving polling mode.
        poller.record(u64::MAX, 0);
        assert_eq!(poller.mode(), PollMode::Polling);
        assert!(!poller.should_block(u64::MAX));
    }
}
