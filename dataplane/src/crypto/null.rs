//! ESP-NULL (RFC 2410): no confidentiality, integrity from the SA's MAC (if any).

use super::cbc_framing;
use super::{CryptoError, EspTransform};
use crate::crypto::MacBox;

pub struct NullTransform {
    mac: MacBox,
}

impl NullTransform {
    pub fn new(mac: MacBox) -> Self {
        NullTransform { mac }
    }
}

impl EspTransform for NullTransform {
    fn iv_len(&self) -> usize {
        0
    }
    fn pad_align(&self) -> usize {
        4
    }
    fn prefetch(&self, _payload_len: usize) {
        crate::esp::prefetch::prefetch_value(self);
        crate::esp::prefetch::prefetch_value(&*self.mac);
    }
    fn icv_len(&self) -> usize {
        self.mac.icv_len()
    }
    fn seal(&self, packet: &mut [u8], seq_high: Option<u32>) {
        cbc_framing::sign(packet, seq_high, &*self.mac);
    }
    fn open(&self, packet: &mut [u8], seq_high: Option<u32>) -> Result<(), CryptoError> {
        cbc_framing::verify(packet, seq_high, &*self.mac).map(|_| ())
    }
}
