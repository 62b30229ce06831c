//! What an inbound and an outbound SA both hold behind their own state: the ESP engine and/or
//! the AH MAC, each with its SPI, and the counters the control thread reads. The accessors that
//! only need these (SPI, footprint, prefetch) live here once for both directions.

use super::counters::SharedCounters;

use super::counters::SaCounters;
use crate::crypto::{EspTransform, IcvMac};

pub(super) struct Keyed<'a> {
    pub esp: Option<(u32, &'a dyn EspTransform)>,
    pub ah: Option<(u32, &'a dyn IcvMac)>,
    pub counters: &'a SharedCounters,
}

impl Keyed<'_> {
    /// SPI of the outermost protocol: AH for a bundle.
    pub fn spi(&self) -> u32 {
        match (self.ah, self.esp) {
            (Some((spi, _)), _) | (None, Some((spi, _))) => spi,
            (None, None) => 0,
        }
    }

    /// Bytes the SA's per-packet state occupies: `own` (the SA itself), its crypto engine(s)
    /// and its counters.
    pub fn footprint_bytes(&self, own: usize) -> usize {
        own + self.esp.map_or(0, |(_, t)| std::mem::size_of_val(t))
            + self.ah.map_or(0, |(_, m)| std::mem::size_of_val(m))
            + std::mem::size_of::<SaCounters>()
    }

    /// Starts loading the crypto engine and counters for a packet of about `packet_len` bytes;
    /// call it once the SA's own lines are cached, since the pointers to them are read from
    /// there.
    #[inline]
    pub fn prefetch_context(&self, packet_len: usize) {
        if let Some((_, transform)) = self.esp {
            transform.prefetch(packet_len);
        }
        if let Some((_, mac)) = self.ah {
            super::prefetch::prefetch_value(mac);
        }
        super::prefetch::prefetch_value(&**self.counters);
    }
}
