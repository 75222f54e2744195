//! The text of `stats/coreN` and `stats/all`: the runtime's per-core event counters.
//!
//! EbbRT's event manager (OSDI 2016, section 3.3) is what the counters describe: events
//! dispatched, turns spent polling, times blocked, wakeups, device completions, timers, work
//! from other cores, tasks spawned. Each file is "name value" lines, one counter a line, in the
//! order of [`Counters`]'s `Display`; `stats/all` starts with `cores N` and sums every core.

use cairn_rt::event::{Counters, Runtime};

/// The text of `stats/core{core}`.
pub(crate) fn core_text(runtime: &Runtime, core: usize) -> String {
    runtime.counters(core).to_string()
}

/// The text of `stats/all`: the number of cores, then each counter summed over them.
pub(crate) fn all_text(runtime: &Runtime) -> String {
    let cores = runtime.core_count();
    let sum = (0..cores).map(|c| runtime.counters(c)).fold(Counters::default(), add);
    format!("cores {cores}\n{sum}")
}

fn add(a: Counters, b: Counters) -> Counters {
    Counters {
        events: a.events.wrapping_add(b.events),
        polls: a.polls.wrapping_add(b.polls),
        blocks: a.blocks.wrapping_add(b.blocks),
        wakeups: a.wakeups.wrapping_add(b.wakeups),
        device_completions: a.device_completions.wrapping_add(b.device_completions),
        timers_fired: a.timers_fired.wrapping_add(b.timers_fired),
        remote_received: a.remote_received.wrapping_add(b.remote_received),
        tasks_spawned: a.tasks_spawned.wrapping_add(b.tasks_spawned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_counter() {
        let one = Counters {
            events: 1,
            polls: 2,
            blocks: 3,
            wakeups: 4,
            device_completions: 5,
            timers_fired: 6,
            remote_received: 7,
            tasks_spawned: 8,
        };
        let two = add(one, one);
        assert_eq!(two.to_string().lines().count(), 8);
        for (line, n) in two.to_string().lines().zip([2, 4, 6, 8, 10, 12, 14, 16]) {
            let value: u64 = line.split(' ').nth(1).unwrap().parse().unwrap();
            assert_eq!(value, n, "{line}");
        }
    }
}
