//! IPv6 longest-prefix match: one hash probe per prefix length in use, longest first.
//! Gateways carry few distinct IPv6 lengths (/48, /56, /64, /128 and a default), so a lookup is a
//! handful of probes; nothing allocates on lookup.

use super::fast_hash::FastHashMap;

pub struct Lpm6 {
    entries: FastHashMap<(u8, u128), u32>,
    /// Prefix lengths with at least one entry, longest first.
    lengths: Vec<u8>,
    per_length: Vec<u32>,
}

pub fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

impl Default for Lpm6 {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm6 {
    pub fn new() -> Self {
        Lpm6 {
            entries: FastHashMap::default(),
            lengths: Vec::new(),
            per_length: vec![0; 129],
        }
    }

    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        self.lengths
            .iter()
            .find_map(|&len| self.entries.get(&(len, addr & mask_v6(len))).copied())
    }

    /// Sets the value of `network/len` (lengths above 128 are clamped by the caller's Prefix).
    pub fn insert(&mut self, network: u128, len: u8, value: u32) {
        let len = len.min(128);
        if self
            .entries
            .insert((len, network & mask_v6(len)), value)
            .is_none()
        {
            self.per_length[usize::from(len)] += 1;
            if self.per_length[usize::from(len)] == 1 {
                self.lengths.push(len);
                self.lengths.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
    }

    pub fn remove(&mut self, network: u128, len: u8) -> Option<u32> {
        let len = len.min(128);
        let removed = self.entries.remove(&(len, network & mask_v6(len)))?;
        self.per_length[usize::from(len)] -= 1;
        if self.per_length[usize::from(len)] == 0 {
            self.lengths.retain(|&l| l != len);
        }
        Some(removed)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> u128 {
        u128::from(text.parse::<std::net::Ipv6Addr>().unwrap())
    }

    #[test]
    fn longest_prefix_wins_and_removal_falls_back() {
        let mut lpm = Lpm6::new();
        lpm.insert(0, 0, 1);
        lpm.insert(ip("2001:db8::"), 32, 2);
        lpm.insert(ip("2001:db8:2::"), 48, 3);
        lpm.insert(ip("2001:db8:2::7"), 128, 4);
        assert_eq!(lpm.lookup(ip("2001:db8:2::7")), Some(4));
        assert_eq!(lpm.lookup(ip("2001:db8:2::8")), Some(3));
        assert_eq!(lpm.lookup(ip("2001:db8:3::8")), Some(2));
        assert_eq!(lpm.lookup(ip("fe80::1")), Some(1));
        assert_eq!(lpm.remove(ip("2001:db8:2::"), 48), Some(3));
        assert_eq!(lpm.lookup(ip("2001:db8:2::8")), Some(2));
        assert_eq!(lpm.remove(ip("2001:db8:2::"), 48), None);
        lpm.remove(0, 0);
        lpm.remove(ip("2001:db8::"), 32);
        lpm.remove(ip("2001:db8:2::7"), 128);
        assert!(lpm.is_empty());
        assert_eq!(lpm.lookup(ip("fe80::1")), None);
    }
}
