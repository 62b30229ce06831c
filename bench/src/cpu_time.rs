//! CPU time of the calling thread, so a benchmark can charge work to the thread that did it even
//! when the machine is shared and wall-clock time includes other people's builds.

/// Nanoseconds of CPU this thread has used (`CLOCK_THREAD_CPUTIME_ID`); 0 if the clock is missing.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_advances_the_thread_clock_and_sleeping_barely_does() {
        let start = thread_cpu_ns();
        let mut x = 1u64;
        let spin_until = std::time::Instant::now() + std::time::Duration::from_millis(20);
        while std::time::Instant::now() < spin_until {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after_spin = thread_cpu_ns();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let after_sleep = thread_cpu_ns();
        assert!(after_spin > start, "spinning uses CPU");
        assert!(
            after_sleep - after_spin < 50_000_000,
            "a sleeping thread is not charged the whole sleep"
        );
    }
}
