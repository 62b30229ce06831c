//! Key material from the configuration (pre-shared keys, manual SA keys): zeroized on drop and
//! never shown by `Debug`.

use zeroize::Zeroizing;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `ascii-text` keys are their bytes; `hexadecimal` ones are hex digits (an optional `0x`).
    pub fn from_ascii(text: &str) -> Self {
        Secret::new(text.as_bytes().to_vec())
    }

    pub fn from_hex(text: &str) -> Result<Self, String> {
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        if digits.is_empty() || !digits.len().is_multiple_of(2) {
            return Err("a hexadecimal key needs an even, non-zero number of hex digits".into());
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
        let raw = digits.as_bytes();
        for pair in raw.chunks(2) {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err("a hexadecimal key may contain only the digits 0-9 and a-f".into());
            };
            bytes.push(hi << 4 | lo);
        }
        Ok(Secret(bytes))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_decode_and_debug_redacts() {
        let k = Secret::from_hex("0x00ff10").unwrap();
        assert_eq!(k.bytes(), [0x00, 0xff, 0x10]);
        let shown = format!("{:?}", Secret::from_ascii("hunter2"));
        assert!(
            !shown.contains("hunter2") && shown.contains("7 bytes"),
            "{shown}"
        );
        assert!(Secret::from_hex("abc").is_err());
        assert!(Secret::from_hex("zz").is_err());
        assert!(Secret::from_hex("0x").is_err());
    }
}
