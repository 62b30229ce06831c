//! IPv4 longest-prefix match as a 16-8-8 multibit trie: at most three dependent array reads per
//! lookup and no allocation. Every slot stores the value and the length of the prefix that
//! painted it, so inserts and deletes only touch the slots a prefix covers (the scheme of DPDK's
//! DIR-24-8, with a 64k-entry first level instead of 16M so that one table per VRF per worker
//! costs 256 KiB rather than 64 MiB).

/// Slot layout: bit 31 says "index of a child chunk in bits 0..24"; otherwise bits 24..30 hold
/// the painting prefix length and bits 0..24 the value plus one (0 = no route).
const CHILD: u32 = 1 << 31;
const DEPTH_SHIFT: u32 = 24;
const LOW_MASK: u32 = (1 << 24) - 1;
const EMPTY: u32 = 0;

/// Largest value a route slot may carry.
pub const MAX_VALUE: u32 = LOW_MASK - 1;

const TOP_SLOTS: usize = 1 << 16;

type Chunk = [u32; 256];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lpm4Error {
    #[error("prefix length {0} is longer than 32")]
    BadLength(u8),
    #[error("value {0} does not fit a table slot")]
    ValueTooLarge(u32),
    #[error("no room for another chunk of the trie")]
    Full,
}

pub struct Lpm4 {
    top: Box<[u32; TOP_SLOTS]>,
    chunks: Vec<Chunk>,
    free_chunks: Vec<u32>,
}

impl Default for Lpm4 {
    fn default() -> Self {
        Self::new()
    }
}

fn leaf(value: u32, depth: u8) -> u32 {
    (u32::from(depth) << DEPTH_SHIFT) | (value + 1)
}

fn depth_of(slot: u32) -> u8 {
    ((slot >> DEPTH_SHIFT) & 0x3f) as u8
}

fn is_empty(slot: u32) -> bool {
    slot & CHILD == 0 && slot & LOW_MASK == 0
}

/// Which slots a paint may overwrite.
#[derive(Clone, Copy)]
enum Overwrite {
    /// Insert of a prefix of this length: empty slots and slots from prefixes no longer than it.
    NotLongerThan(u8),
    /// Delete of a prefix of this length: exactly the slots it painted.
    PaintedBy(u8),
}

impl Overwrite {
    fn allows(self, slot: u32) -> bool {
        match self {
            Overwrite::NotLongerThan(len) => is_empty(slot) || depth_of(slot) <= len,
            Overwrite::PaintedBy(len) => !is_empty(slot) && depth_of(slot) == len,
        }
    }
}

impl Lpm4 {
    pub fn new() -> Self {
        let top: Box<[u32; TOP_SLOTS]> = vec![EMPTY; TOP_SLOTS]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| unreachable!("the vector has exactly TOP_SLOTS entries"));
        Lpm4 {
            top,
            chunks: Vec::new(),
            free_chunks: Vec::new(),
        }
    }

    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let mut slot = self.top[(addr >> 16) as usize];
        if slot & CHILD != 0 {
            slot = self.chunk(slot)[((addr >> 8) & 0xff) as usize];
            if slot & CHILD != 0 {
                slot = self.chunk(slot)[(addr & 0xff) as usize];
            }
        }
        match slot & LOW_MASK {
            0 => None,
            v => Some(v - 1),
        }
    }

    /// Starts loading the second-level slot `addr` will read (the first level, 256 KiB for
    /// every VRF, stays cached; the chunks behind 100,000 routes do not).
    #[inline]
    pub fn prefetch(&self, addr: u32) {
        let slot = self.top[(addr >> 16) as usize];
        if slot & CHILD != 0 {
            let line = &self.chunk(slot)[((addr >> 8) & 0xff) as usize];
            crate::esp::prefetch::prefetch_bytes(line as *const u32 as *const u8, 1);
        }
    }

    #[inline]
    fn chunk(&self, slot: u32) -> &Chunk {
        &self.chunks[(slot & LOW_MASK) as usize]
    }

    /// Sets the value for `network/len`, replacing any value that prefix had.
    pub fn insert(&mut self, network: u32, len: u8, value: u32) -> Result<(), Lpm4Error> {
        if len > 32 {
            return Err(Lpm4Error::BadLength(len));
        }
        if value > MAX_VALUE {
            return Err(Lpm4Error::ValueTooLarge(value));
        }
        self.paint(
            network,
            len,
            leaf(value, len),
            Overwrite::NotLongerThan(len),
        )
    }

    /// Removes `network/len`; the slots fall back to `fallback` = (value, length) of the longest
    /// shorter prefix still covering it, which the caller knows from its route list.
    pub fn remove(
        &mut self,
        network: u32,
        len: u8,
        fallback: Option<(u32, u8)>,
    ) -> Result<(), Lpm4Error> {
        if len > 32 {
            return Err(Lpm4Error::BadLength(len));
        }
        let replacement = match fallback {
            Some((value, depth)) if depth < len && value <= MAX_VALUE => leaf(value, depth),
            _ => EMPTY,
        };
        self.paint(network, len, replacement, Overwrite::PaintedBy(len))?;
        self.collapse(network, len);
        Ok(())
    }

    /// Number of second- and third-level chunks in use (for memory accounting).
    pub fn chunks_in_use(&self) -> usize {
        self.chunks.len() - self.free_chunks.len()
    }

    pub fn memory_bytes(&self) -> usize {
        TOP_SLOTS * 4 + self.chunks.capacity() * std::mem::size_of::<Chunk>()
    }

    fn paint(&mut self, network: u32, len: u8, new: u32, rule: Overwrite) -> Result<(), Lpm4Error> {
        let network = if len == 0 {
            0
        } else {
            network & (u32::MAX << (32 - u32::from(len)))
        };
        let top_index = (network >> 16) as usize;
        if len <= 16 {
            let count = 1usize << (16 - len);
            for index in top_index..top_index + count {
                let slot = self.top[index];
                self.top[index] = self.paint_slot(slot, new, rule);
            }
            return Ok(());
        }
        let second = self.child_of_top(top_index)?;
        let second_index = ((network >> 8) & 0xff) as usize;
        if len <= 24 {
            let count = 1usize << (24 - len);
            for index in second_index..second_index + count {
                let slot = self.chunks[second as usize][index];
                self.chunks[second as usize][index] = self.paint_slot(slot, new, rule);
            }
            return Ok(());
        }
        let third = self.child_of_chunk(second, second_index)?;
        let third_index = (network & 0xff) as usize;
        let count = 1usize << (32 - len);
        for index in third_index..third_index + count {
            let slot = self.chunks[third as usize][index];
            self.chunks[third as usize][index] = self.paint_slot(slot, new, rule);
        }
        Ok(())
    }

    /// Paints one slot, descending into a child chunk (whose slots all lie inside the prefix).
    fn paint_slot(&mut self, slot: u32, new: u32, rule: Overwrite) -> u32 {
        if slot & CHILD != 0 {
            let chunk = (slot & LOW_MASK) as usize;
            for index in 0..256 {
                let inner = self.chunks[chunk][index];
                self.chunks[chunk][index] = self.paint_slot(inner, new, rule);
            }
            slot
        } else if rule.allows(slot) {
            new
        } else {
            slot
        }
    }

    fn child_of_top(&mut self, top_index: usize) -> Result<u32, Lpm4Error> {
        let slot = self.top[top_index];
        if slot & CHILD != 0 {
            return Ok(slot & LOW_MASK);
        }
        let chunk = self.new_chunk(slot)?;
        self.top[top_index] = CHILD | chunk;
        Ok(chunk)
    }

    fn child_of_chunk(&mut self, parent: u32, index: usize) -> Result<u32, Lpm4Error> {
        let slot = self.chunks[parent as usize][index];
        if slot & CHILD != 0 {
            return Ok(slot & LOW_MASK);
        }
        let chunk = self.new_chunk(slot)?;
        self.chunks[parent as usize][index] = CHILD | chunk;
        Ok(chunk)
    }

    /// A chunk whose every slot inherits the slot it replaces.
    fn new_chunk(&mut self, inherited: u32) -> Result<u32, Lpm4Error> {
        if let Some(chunk) = self.free_chunks.pop() {
            self.chunks[chunk as usize] = [inherited; 256];
            return Ok(chunk);
        }
        let chunk = u32::try_from(self.chunks.len()).map_err(|_| Lpm4Error::Full)?;
        if chunk > LOW_MASK {
            return Err(Lpm4Error::Full);
        }
        self.chunks.push([inherited; 256]);
        Ok(chunk)
    }

    /// After a delete, folds chunks whose slots became identical back into their parent slot.
    /// Identical leaves can only come from a prefix at least as short as the parent level,
    /// so the fold loses nothing.
    fn collapse(&mut self, network: u32, len: u8) {
        if len <= 16 {
            return;
        }
        let top_index = (network >> 16) as usize;
        let top_slot = self.top[top_index];
        if top_slot & CHILD == 0 {
            return;
        }
        let second = top_slot & LOW_MASK;
        if len > 24 {
            let second_index = ((network >> 8) & 0xff) as usize;
            let slot = self.chunks[second as usize][second_index];
            if slot & CHILD != 0 {
                let third = slot & LOW_MASK;
                if let Some(uniform) = self.uniform_leaf(third) {
                    self.chunks[second as usize][second_index] = uniform;
                    self.free_chunks.push(third);
                }
            }
        }
        if let Some(uniform) = self.uniform_leaf(second) {
            self.top[top_index] = uniform;
            self.free_chunks.push(second);
        }
    }

    fn uniform_leaf(&self, chunk: u32) -> Option<u32> {
        let slots = &self.chunks[chunk as usize];
        let first = slots[0];
        (first & CHILD == 0 && slots.iter().all(|&s| s == first)).then_some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> u32 {
        u32::from(text.parse::<std::net::Ipv4Addr>().unwrap())
    }

    /// Reference: the longest of a plain list of prefixes.
    fn naive(routes: &[(u32, u8, u32)], addr: u32) -> Option<u32> {
        routes
            .iter()
            .filter(|(net, len, _)| {
                let mask = if *len == 0 {
                    0
                } else {
                    u32::MAX << (32 - *len)
                };
                addr & mask == *net & mask
            })
            .max_by_key(|(_, len, _)| *len)
            .map(|(_, _, v)| *v)
    }

    #[test]
    fn longest_prefix_wins_at_every_level() {
        let mut lpm = Lpm4::new();
        lpm.insert(0, 0, 1).unwrap();
        lpm.insert(ip("172.16.0.0"), 12, 2).unwrap();
        lpm.insert(ip("172.16.2.0"), 24, 3).unwrap();
        lpm.insert(ip("172.16.2.128"), 25, 4).unwrap();
        lpm.insert(ip("172.16.2.200"), 32, 5).unwrap();
        assert_eq!(lpm.lookup(ip("8.8.8.8")), Some(1));
        assert_eq!(lpm.lookup(ip("172.17.1.1")), Some(2));
        assert_eq!(lpm.lookup(ip("172.16.2.1")), Some(3));
        assert_eq!(lpm.lookup(ip("172.16.2.129")), Some(4));
        assert_eq!(lpm.lookup(ip("172.16.2.200")), Some(5));
        // A shorter prefix inserted later must not hide longer ones.
        lpm.insert(ip("172.16.0.0"), 16, 6).unwrap();
        assert_eq!(lpm.lookup(ip("172.16.2.1")), Some(3));
        assert_eq!(lpm.lookup(ip("172.16.9.1")), Some(6));
    }

    #[test]
    fn remove_falls_back_and_frees_chunks() {
        let mut lpm = Lpm4::new();
        lpm.insert(ip("10.0.0.0"), 8, 1).unwrap();
        lpm.insert(ip("10.1.2.0"), 24, 2).unwrap();
        lpm.insert(ip("10.1.2.4"), 30, 3).unwrap();
        assert_eq!(lpm.chunks_in_use(), 2);
        lpm.remove(ip("10.1.2.4"), 30, Some((2, 24))).unwrap();
        assert_eq!(lpm.lookup(ip("10.1.2.5")), Some(2));
        assert_eq!(lpm.chunks_in_use(), 1);
        lpm.remove(ip("10.1.2.0"), 24, Some((1, 8))).unwrap();
        assert_eq!(lpm.lookup(ip("10.1.2.5")), Some(1));
        assert_eq!(lpm.chunks_in_use(), 0);
        lpm.remove(ip("10.0.0.0"), 8, None).unwrap();
        assert_eq!(lpm.lookup(ip("10.1.2.5")), None);
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        let mut lpm = Lpm4::new();
        assert_eq!(lpm.insert(0, 33, 1), Err(Lpm4Error::BadLength(33)));
        assert_eq!(
            lpm.insert(0, 8, MAX_VALUE + 1),
            Err(Lpm4Error::ValueTooLarge(MAX_VALUE + 1))
        );
    }

    #[test]
    fn agrees_with_a_naive_search_on_pseudo_random_routes() {
        let mut state = 0x1234_5678_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let mut lpm = Lpm4::new();
        let mut routes: Vec<(u32, u8, u32)> = Vec::new();
        for value in 0..300 {
            // Cluster the networks so that prefixes nest.
            let net = (next() & 0x0f0f_ffff) | 0x0a00_0000;
            let len = (next() % 33) as u8;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            if routes.iter().any(|(n, l, _)| *l == len && *n == net & mask) {
                continue;
            }
            lpm.insert(net, len, value).unwrap();
            routes.push((net & mask, len, value));
        }
        for _ in 0..2000 {
            let addr = (next() & 0x0f0f_ffff) | 0x0a00_0000;
            assert_eq!(lpm.lookup(addr), naive(&routes, addr), "addr {addr:#x}");
        }
        // Delete half, each falling back to the longest shorter covering prefix.
        let mut index = 0;
        while index < routes.len() {
            let (net, len, _) = routes.remove(index);
            let fallback = routes
                .iter()
                .filter(|(n, l, _)| {
                    *l < len && {
                        let mask = if *l == 0 { 0 } else { u32::MAX << (32 - *l) };
                        net & mask == *n
                    }
                })
                .max_by_key(|(_, l, _)| *l)
                .map(|(_, l, v)| (*v, *l));
            lpm.remove(net, len, fallback).unwrap();
            index += 1;
        }
        for _ in 0..2000 {
            let addr = (next() & 0x0f0f_ffff) | 0x0a00_0000;
            assert_eq!(lpm.lookup(addr), naive(&routes, addr), "addr {addr:#x}");
        }
    }
}
