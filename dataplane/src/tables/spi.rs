//! Inbound SPIs that say where their SA lives: `[worker: 8][generation: 4][slot: 20]`.
//!
//! Any worker that receives an ESP packet reads the owner worker from the SPI's top byte
//! (hand-off) and the owner finds the SA at `slot` in a flat array (O(1) for any tunnel count).
//! The generation (1..=15, never 0) changes each time a slot is reused, so a late packet for a
//! deleted SA does not hit its successor, and keeps every SPI ≥ 2^20 (0..=255 are reserved).
//!
//! The IKE responder allocates its inbound SPIs here, through the tunnel manager that already
//! knows which worker will own the tunnel.

use super::ids::WorkerId;

pub const WORKER_BITS: u32 = 8;
pub const GENERATION_BITS: u32 = 4;
pub const SLOT_BITS: u32 = 20;
pub const SLOTS_PER_WORKER: u32 = 1 << SLOT_BITS;
pub const MAX_WORKERS: usize = 1 << WORKER_BITS;

const SLOT_MASK: u32 = SLOTS_PER_WORKER - 1;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;
const IN_USE: u8 = 0x80;

#[inline]
pub fn spi_owner(spi: u32) -> WorkerId {
    WorkerId((spi >> (SLOT_BITS + GENERATION_BITS)) as u16)
}

#[inline]
pub fn spi_slot(spi: u32) -> usize {
    (spi & SLOT_MASK) as usize
}

fn compose(worker: WorkerId, generation: u32, slot: u32) -> u32 {
    (u32::from(worker.0) << (SLOT_BITS + GENERATION_BITS))
        | ((generation & GENERATION_MASK) << SLOT_BITS)
        | (slot & SLOT_MASK)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiError {
    #[error("worker {0:?} is not one of the {1} workers")]
    UnknownWorker(WorkerId, usize),
    #[error("worker {0:?} has no free SPI slot")]
    Exhausted(WorkerId),
}

#[derive(Default)]
struct WorkerSpis {
    /// Generation last handed out per slot (0 = never used), `IN_USE` set while allocated.
    generations: Vec<u8>,
    free: Vec<u32>,
    in_use: u32,
}

/// Hands out and takes back inbound SPIs for every worker. Control-thread only.
pub struct SpiAllocator {
    workers: Vec<WorkerSpis>,
}

impl SpiAllocator {
    /// An allocator for workers `0..worker_count` (at most 256).
    pub fn new(worker_count: usize) -> Self {
        let count = worker_count.min(MAX_WORKERS);
        SpiAllocator {
            workers: (0..count).map(|_| WorkerSpis::default()).collect(),
        }
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    pub fn allocate(&mut self, worker: WorkerId) -> Result<u32, SpiError> {
        let count = self.workers.len();
        let spis = self
            .workers
            .get_mut(usize::from(worker.0))
            .ok_or(SpiError::UnknownWorker(worker, count))?;
        let slot = match spis.free.pop() {
            Some(slot) => slot,
            None => {
                let fresh = spis.generations.len() as u32;
                if fresh >= SLOTS_PER_WORKER {
                    return Err(SpiError::Exhausted(worker));
                }
                spis.generations.push(0);
                fresh
            }
        };
        let previous = u32::from(spis.generations[slot as usize] & !IN_USE);
        let generation = previous % GENERATION_MASK + 1;
        spis.generations[slot as usize] = generation as u8 | IN_USE;
        spis.in_use += 1;
        Ok(compose(worker, generation, slot))
    }

    /// Takes an SPI back; false if it is not currently allocated (double release, or foreign).
    pub fn release(&mut self, spi: u32) -> bool {
        if !self.is_allocated(spi) {
            return false;
        }
        let spis = &mut self.workers[usize::from(spi_owner(spi).0)];
        let slot = spi_slot(spi);
        spis.generations[slot] &= !IN_USE;
        spis.free.push(slot as u32);
        spis.in_use -= 1;
        true
    }

    /// True when `spi` is exactly an SPI this allocator handed out and has not taken back.
    pub fn is_allocated(&self, spi: u32) -> bool {
        let Some(spis) = self.workers.get(usize::from(spi_owner(spi).0)) else {
            return false;
        };
        let slot = spi_slot(spi);
        let generation = (spi >> SLOT_BITS) & GENERATION_MASK;
        spis.generations
            .get(slot)
            .is_some_and(|&g| g & IN_USE != 0 && u32::from(g & !IN_USE) == generation)
    }

    pub fn in_use(&self, worker: WorkerId) -> u32 {
        self.workers
            .get(usize::from(worker.0))
            .map_or(0, |w| w.in_use)
    }

    pub fn total_in_use(&self) -> u32 {
        self.workers.iter().map(|w| w.in_use).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spi_names_owner_and_slot_and_changes_on_reuse() {
        let mut spis = SpiAllocator::new(4);
        let first = spis.allocate(WorkerId(3)).unwrap();
        assert_eq!(spi_owner(first), WorkerId(3));
        assert_eq!(spi_slot(first), 0);
        assert!(first > 255);
        let zero = spis.allocate(WorkerId(0)).unwrap();
        assert!(zero > 255, "worker 0 slot 0 must not give a reserved SPI");
        assert!(spis.release(first));
        assert!(!spis.release(first), "double release is refused");
        let again = spis.allocate(WorkerId(3)).unwrap();
        assert_eq!(spi_slot(again), 0);
        assert_ne!(again, first, "a reused slot gets a new generation");
        assert!(spis.is_allocated(again) && !spis.is_allocated(first));
        assert_eq!(
            spis.allocate(WorkerId(9)),
            Err(SpiError::UnknownWorker(WorkerId(9), 4))
        );
        assert_eq!(spis.total_in_use(), 2);
    }

    #[test]
    fn generations_cycle_without_reaching_zero() {
        let mut spis = SpiAllocator::new(1);
        let mut seen = Vec::new();
        for _ in 0..40 {
            let spi = spis.allocate(WorkerId(0)).unwrap();
            assert!(spi >= 1 << SLOT_BITS);
            seen.push(spi);
            spis.release(spi);
        }
        assert_ne!(seen[0], seen[1]);
        assert_eq!(seen[0], seen[15], "15 generations, then the cycle repeats");
    }
}
