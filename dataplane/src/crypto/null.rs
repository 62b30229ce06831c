//! ESP-NULL (RFC 2410): no confidentiality, integrity from the SA's MAC (if any).

use super::{CryptoError, EspTransform, IcvMac};

pub struct NullTransform {
    mac: Box<dyn IcvMac>,
}

impl NullTransform {
    pub fn new(mac: Box<dyn IcvMac>) -> Self {
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
    fn prefetch(&self) {
        crate::esp::prefetch::prefetch_value(self);
        crate::esp::prefetch::prefetch_value(&*self.mac);
    }
    fn icv_len(&self) -> usize {
        self.mac.icv_len()
    }
    fn seal(&self, packet: &mut [u8], seq_high: Option<u32>) {
        let icv_at = packet.len() - self.mac.icv_len();
        let (covered, icv) = packet.split_at_mut(icv_at);
        self.mac.compute(
            &[
                covered,
                &seq_high.unwrap_or(0).to_be_bytes()[..esn_len(seq_high)],
            ],
            icv,
        );
    }
    fn open(&self, packet: &mut [u8], seq_high: Option<u32>) -> Result<(), CryptoError> {
        let Some(icv_at) = packet.len().checked_sub(self.mac.icv_len()) else {
            return Err(CryptoError::BadLength);
        };
        let (covered, icv) = packet.split_at(icv_at);
        if self.mac.verify(
            &[
                covered,
                &seq_high.unwrap_or(0).to_be_bytes()[..esn_len(seq_high)],
            ],
            icv,
        ) {
            Ok(())
        } else {
            Err(CryptoError::Authentication)
        }
    }
}

/// RFC 4303 §2.2.1: with ESN the high half is appended to the integrity input (not sent).
pub(super) fn esn_len(seq_high: Option<u32>) -> usize {
    if seq_high.is_some() {
        4
    } else {
        0
    }
}
