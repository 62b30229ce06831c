//! Notification and Delete payloads (RFC 2408 sections 3.14 and 3.15).

use super::codec_error::CodecError;
use super::numbers::DOI_IPSEC;

const MAX_DELETE_SPIS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    pub doi: u32,
    pub protocol: u8,
    pub message_type: u16,
    pub spi: Vec<u8>,
    pub data: Vec<u8>,
}

impl Notify {
    pub fn new(protocol: u8, message_type: u16, spi: Vec<u8>, data: Vec<u8>) -> Self {
        Notify {
            doi: DOI_IPSEC,
            protocol,
            message_type,
            spi,
            data,
        }
    }

    pub fn parse(body: &[u8]) -> Result<Notify, CodecError> {
        if body.len() < 8 {
            return Err(CodecError::BadNotify);
        }
        let spi_len = usize::from(body[5]);
        if body.len() < 8 + spi_len {
            return Err(CodecError::BadNotify);
        }
        Ok(Notify {
            doi: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            protocol: body[4],
            message_type: u16::from_be_bytes([body[6], body[7]]),
            spi: body[8..8 + spi_len].to_vec(),
            data: body[8 + spi_len..].to_vec(),
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.doi.to_be_bytes());
        out.push(self.protocol);
        out.push(self.spi.len() as u8);
        out.extend_from_slice(&self.message_type.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    pub doi: u32,
    pub protocol: u8,
    pub spi_len: u8,
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    pub fn new(protocol: u8, spis: Vec<Vec<u8>>) -> Self {
        let spi_len = spis.first().map_or(0, |s| s.len() as u8);
        Delete {
            doi: DOI_IPSEC,
            protocol,
            spi_len,
            spis,
        }
    }

    pub fn parse(body: &[u8]) -> Result<Delete, CodecError> {
        if body.len() < 8 {
            return Err(CodecError::BadNotify);
        }
        let spi_len = usize::from(body[5]);
        let count = usize::from(u16::from_be_bytes([body[6], body[7]]));
        if spi_len == 0
            || count == 0
            || count > MAX_DELETE_SPIS
            || body.len() != 8 + spi_len * count
        {
            return Err(CodecError::BadNotify);
        }
        let spis = body[8..].chunks(spi_len).map(|c| c.to_vec()).collect();
        Ok(Delete {
            doi: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            protocol: body[4],
            spi_len: spi_len as u8,
            spis,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.doi.to_be_bytes());
        out.push(self.protocol);
        out.push(self.spi_len);
        out.extend_from_slice(&(self.spis.len() as u16).to_be_bytes());
        for spi in &self.spis {
            out.extend_from_slice(spi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_and_delete_round_trip() {
        let n = Notify::new(1, 36136, vec![7; 16], vec![0, 0, 0, 9]);
        let mut b = Vec::new();
        n.write(&mut b);
        assert_eq!(Notify::parse(&b).unwrap(), n);
        let d = Delete::new(3, vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]]);
        let mut b = Vec::new();
        d.write(&mut b);
        assert_eq!(Delete::parse(&b).unwrap(), d);
        b.push(0);
        assert_eq!(Delete::parse(&b), Err(CodecError::BadNotify));
        assert_eq!(
            Notify::parse(&[0, 0, 0, 1, 1, 16, 0, 1]),
            Err(CodecError::BadNotify)
        );
    }
}
