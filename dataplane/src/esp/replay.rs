//! Anti-replay window (RFC 4303 §3.4.3, appendix A) as a ring bitmap (RFC 6479): advancing
//! clears whole words instead of shifting the map, so a jump costs at most one pass.
//!
//! Checking and updating are separate: the window moves only after the ICV verified, so a
//! forged packet can neither advance nor poison it.

/// Largest window the SA accepts (`SaSpec::replay_window`).
pub const MAX_WINDOW: u32 = 4096;
const WORDS: usize = (MAX_WINDOW as usize) / 64 + 1;

/// In C order, the bitmap last: a packet reads `window`, `top` and one word of it.
#[repr(C)]
pub struct ReplayWindow {
    /// Packets to the left of `top` still accepted; 0 disables the check.
    window: u64,
    /// Highest sequence number accepted so far (0: none yet).
    top: u64,
    /// Bit `seq % (WORDS*64)` records that `seq` was seen.
    bits: [u64; WORDS],
}

/// Why a sequence number is refused before decryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    Duplicate,
    TooOld,
}

impl ReplayWindow {
    /// `window` is clamped to [`MAX_WINDOW`].
    pub fn new(window: u32) -> Self {
        ReplayWindow {
            window: u64::from(window.min(MAX_WINDOW)),
            top: 0,
            bits: [0; WORDS],
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.window != 0
    }

    pub fn top(&self) -> u64 {
        self.top
    }

    /// Reconstructs the full 64-bit number from the 32 bits on the wire (RFC 4303 A2.2); without
    /// ESN the high half is always 0.
    pub fn infer_esn(&self, seq_low: u32) -> u64 {
        let w = self.window.max(1);
        let tl = self.top as u32;
        let th = (self.top >> 32) as u32;
        let seq_low64 = u64::from(seq_low);
        let high = if u64::from(tl) + 1 >= w {
            if seq_low64 + w > u64::from(tl) {
                th
            } else {
                th.wrapping_add(1)
            }
        } else if seq_low64 >= u64::from(tl.wrapping_sub(w as u32 - 1)) {
            // The window reaches back across a 2^32 boundary and the number sits before it;
            // in the very first epoch there is nothing before, so the number is simply new.
            th.saturating_sub(1)
        } else {
            th
        };
        (u64::from(high) << 32) | seq_low64
    }

    /// Whether `seq` may be processed. Sequence number 0 is never sent, so always refused.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if !self.is_enabled() || seq > self.top {
            return Ok(());
        }
        if seq + self.window <= self.top {
            return Err(ReplayError::TooOld);
        }
        let (word, bit) = Self::slot(seq);
        if self.bits[word] & (1 << bit) != 0 {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records an authenticated `seq` (which passed [`check`](Self::check)).
    pub fn accept(&mut self, seq: u64) {
        if seq > self.top {
            if self.is_enabled() {
                let old_word = self.top / 64;
                let new_word = seq / 64;
                // Words between the old and new top now describe numbers never seen.
                let stale = (new_word - old_word).min(WORDS as u64);
                for k in 1..=stale {
                    self.bits[((old_word + k) % WORDS as u64) as usize] = 0;
                }
            }
            self.top = seq;
        }
        if self.is_enabled() {
            let (word, bit) = Self::slot(seq);
            self.bits[word] |= 1 << bit;
        }
    }

    fn slot(seq: u64) -> (usize, u32) {
        (((seq / 64) % WORDS as u64) as usize, (seq % 64) as u32)
    }
}

impl ReplayWindow {
    /// Where in a window the bitmap word that records `seq` lies, so that a packet's word can
    /// be prefetched before the window is read.
    pub(crate) fn word_offset(seq: u64) -> usize {
        std::mem::offset_of!(ReplayWindow, bits) + 8 * Self::slot(seq).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_offset_names_the_word_that_records_the_sequence_number() {
        let w = ReplayWindow::new(4096);
        let base = &w as *const ReplayWindow as usize;
        for seq in [0u64, 63, 64, 511, 512, 4159, 4160, 1 << 40] {
            let (word, _) = ReplayWindow::slot(seq);
            let address = &w.bits[word] as *const u64 as usize;
            assert_eq!(ReplayWindow::word_offset(seq), address - base, "seq {seq}");
        }
    }

    #[test]
    fn duplicates_and_old_numbers_are_refused() {
        let mut w = ReplayWindow::new(64);
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        for s in [1, 2, 5, 3] {
            assert_eq!(w.check(s), Ok(()));
            w.accept(s);
        }
        assert_eq!(w.check(5), Err(ReplayError::Duplicate));
        assert_eq!(w.check(4), Ok(()));
        w.accept(200);
        assert_eq!(w.check(136), Err(ReplayError::TooOld));
        assert_eq!(w.check(137), Ok(()));
        assert_eq!(w.check(200), Err(ReplayError::Duplicate));
    }

    #[test]
    fn large_window_tracks_every_number_in_it() {
        let mut w = ReplayWindow::new(4096);
        for s in (1..=10_000u64).step_by(2) {
            w.accept(s);
        }
        for s in 10_000 - 4095..=10_000u64 {
            let expected = if s % 2 == 1 {
                Err(ReplayError::Duplicate)
            } else {
                Ok(())
            };
            assert_eq!(w.check(s), expected, "seq {s}");
        }
        assert_eq!(w.top(), 9_999);
        assert_eq!(w.check(9_999 - 4096), Err(ReplayError::TooOld));
        assert_eq!(w.check(9_999 - 4094), Err(ReplayError::Duplicate));
        // A jump far ahead forgets the old map entirely.
        w.accept(1_000_000);
        assert_eq!(w.check(1_000_000 - 4000), Ok(()));
    }

    #[test]
    fn disabled_window_accepts_anything_but_zero() {
        let mut w = ReplayWindow::new(0);
        w.accept(10);
        assert_eq!(w.check(10), Ok(()));
        assert_eq!(w.check(1), Ok(()));
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
    }

    #[test]
    fn esn_high_half_is_inferred_across_the_boundary() {
        let mut w = ReplayWindow::new(64);
        w.accept(0xffff_fff0);
        assert_eq!(w.infer_esn(0xffff_fff8), 0xffff_fff8);
        assert_eq!(w.infer_esn(5), 0x1_0000_0005);
        w.accept(0x1_0000_0005);
        assert_eq!(w.infer_esn(0xffff_fff9), 0xffff_fff9);
        assert_eq!(w.infer_esn(6), 0x1_0000_0006);
        let fresh = ReplayWindow::new(64);
        assert_eq!(fresh.infer_esn(0xffff_fffc), 0xffff_fffc);
    }
}
