//! SA payloads with their proposals, transforms and data attributes (RFC 2408 sections 3.4-3.6).

use super::codec_error::CodecError;
use super::numbers::{payload_type, DOI_IPSEC, SIT_IDENTITY_ONLY};

const MAX_PROPOSALS: usize = 32;
const MAX_TRANSFORMS: usize = 64;
const MAX_ATTRIBUTES: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    Basic(u16),
    Variable(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub kind: u16,
    pub value: AttributeValue,
}

impl Attribute {
    pub fn basic(kind: u16, value: u16) -> Self {
        Attribute {
            kind,
            value: AttributeValue::Basic(value),
        }
    }

    /// A duration or other number that may come in either form; longer than 8 bytes is no number.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            AttributeValue::Basic(v) => Some(u64::from(*v)),
            AttributeValue::Variable(bytes) if !bytes.is_empty() && bytes.len() <= 8 => {
                Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            }
            AttributeValue::Variable(_) => None,
        }
    }

    /// A number in its shortest encoding: basic when it fits 16 bits (RFC 2408 allows either).
    pub fn number(kind: u16, value: u64) -> Self {
        if value <= u64::from(u16::MAX) {
            Attribute::basic(kind, value as u16)
        } else if value <= u64::from(u32::MAX) {
            Attribute {
                kind,
                value: AttributeValue::Variable((value as u32).to_be_bytes().to_vec()),
            }
        } else {
            Attribute {
                kind,
                value: AttributeValue::Variable(value.to_be_bytes().to_vec()),
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    pub number: u8,
    pub transform_id: u8,
    pub attributes: Vec<Attribute>,
}

impl Transform {
    pub fn attribute(&self, kind: u16) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.kind == kind)
    }

    pub fn basic(&self, kind: u16) -> Option<u16> {
        match self.attribute(kind).map(|a| &a.value) {
            Some(AttributeValue::Basic(v)) => Some(*v),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub number: u8,
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaPayload {
    pub doi: u32,
    pub situation: u32,
    pub proposals: Vec<Proposal>,
}

impl SaPayload {
    pub fn new(proposals: Vec<Proposal>) -> Self {
        SaPayload {
            doi: DOI_IPSEC,
            situation: SIT_IDENTITY_ONLY,
            proposals,
        }
    }

    pub fn parse(body: &[u8]) -> Result<SaPayload, CodecError> {
        if body.len() < 8 {
            return Err(CodecError::BadSa);
        }
        let doi = be32(&body[0..4]);
        let situation = be32(&body[4..8]);
        // Only the IPsec DOI with identity-only situation is defined without labels.
        if doi != DOI_IPSEC || situation != SIT_IDENTITY_ONLY {
            return Err(CodecError::BadSa);
        }
        let mut proposals = Vec::new();
        let mut rest = &body[8..];
        let mut next = payload_type::PROPOSAL;
        while next != payload_type::NONE {
            if next != payload_type::PROPOSAL || proposals.len() >= MAX_PROPOSALS {
                return Err(CodecError::BadSa);
            }
            let (this_next, content, after) = sub_payload(rest)?;
            proposals.push(parse_proposal(content)?);
            next = this_next;
            rest = after;
        }
        if !rest.is_empty() || proposals.is_empty() {
            return Err(CodecError::BadSa);
        }
        Ok(SaPayload {
            doi,
            situation,
            proposals,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.doi.to_be_bytes());
        out.extend_from_slice(&self.situation.to_be_bytes());
        for (i, proposal) in self.proposals.iter().enumerate() {
            let last = i + 1 == self.proposals.len();
            let start = out.len();
            out.push(if last {
                payload_type::NONE
            } else {
                payload_type::PROPOSAL
            });
            out.extend_from_slice(&[0, 0, 0]);
            out.push(proposal.number);
            out.push(proposal.protocol);
            out.push(proposal.spi.len() as u8);
            out.push(proposal.transforms.len() as u8);
            out.extend_from_slice(&proposal.spi);
            for (j, transform) in proposal.transforms.iter().enumerate() {
                let last_t = j + 1 == proposal.transforms.len();
                let t_start = out.len();
                out.push(if last_t {
                    payload_type::NONE
                } else {
                    payload_type::TRANSFORM
                });
                out.extend_from_slice(&[0, 0, 0]);
                out.push(transform.number);
                out.push(transform.transform_id);
                out.extend_from_slice(&[0, 0]);
                for attribute in &transform.attributes {
                    write_attribute(attribute, out);
                }
                set_len(out, t_start);
            }
            set_len(out, start);
        }
    }
}

fn set_len(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// One generic-header sub-payload: (next type, content after the 4-byte header, the rest).
fn sub_payload(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), CodecError> {
    if bytes.len() < 4 {
        return Err(CodecError::BadSa);
    }
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if len < 4 || len > bytes.len() {
        return Err(CodecError::BadSa);
    }
    Ok((bytes[0], &bytes[4..len], &bytes[len..]))
}

fn parse_proposal(content: &[u8]) -> Result<Proposal, CodecError> {
    if content.len() < 4 {
        return Err(CodecError::BadSa);
    }
    let number = content[0];
    let protocol = content[1];
    let spi_len = usize::from(content[2]);
    let count = usize::from(content[3]);
    if content.len() < 4 + spi_len || count == 0 || count > MAX_TRANSFORMS {
        return Err(CodecError::BadSa);
    }
    let spi = content[4..4 + spi_len].to_vec();
    let mut rest = &content[4 + spi_len..];
    let mut transforms = Vec::with_capacity(count);
    let mut next = payload_type::TRANSFORM;
    while next != payload_type::NONE {
        if next != payload_type::TRANSFORM || transforms.len() >= count {
            return Err(CodecError::BadSa);
        }
        let (this_next, body, after) = sub_payload(rest)?;
        transforms.push(parse_transform(body)?);
        next = this_next;
        rest = after;
    }
    if transforms.len() != count || !rest.is_empty() {
        return Err(CodecError::BadSa);
    }
    Ok(Proposal {
        number,
        protocol,
        spi,
        transforms,
    })
}

fn parse_transform(body: &[u8]) -> Result<Transform, CodecError> {
    if body.len() < 4 {
        return Err(CodecError::BadSa);
    }
    let attributes = parse_attributes(&body[4..])?;
    Ok(Transform {
        number: body[0],
        transform_id: body[1],
        attributes,
    })
}

pub fn parse_attributes(mut bytes: &[u8]) -> Result<Vec<Attribute>, CodecError> {
    let mut attributes = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 4 || attributes.len() >= MAX_ATTRIBUTES {
            return Err(CodecError::BadAttribute);
        }
        let raw_kind = u16::from_be_bytes([bytes[0], bytes[1]]);
        let field = u16::from_be_bytes([bytes[2], bytes[3]]);
        let kind = raw_kind & 0x7fff;
        if raw_kind & 0x8000 != 0 {
            attributes.push(Attribute::basic(kind, field));
            bytes = &bytes[4..];
        } else {
            let len = usize::from(field);
            if bytes.len() < 4 + len {
                return Err(CodecError::BadAttribute);
            }
            attributes.push(Attribute {
                kind,
                value: AttributeValue::Variable(bytes[4..4 + len].to_vec()),
            });
            bytes = &bytes[4 + len..];
        }
    }
    Ok(attributes)
}

pub fn write_attribute(attribute: &Attribute, out: &mut Vec<u8>) {
    match &attribute.value {
        AttributeValue::Basic(v) => {
            out.extend_from_slice(&(attribute.kind | 0x8000).to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        AttributeValue::Variable(bytes) => {
            out.extend_from_slice(&(attribute.kind & 0x7fff).to_be_bytes());
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sa_round_trips_with_basic_and_variable_attributes() {
        let sa = SaPayload::new(vec![
            Proposal {
                number: 1,
                protocol: 3,
                spi: vec![1, 2, 3, 4],
                transforms: vec![Transform {
                    number: 1,
                    transform_id: 12,
                    attributes: vec![Attribute::basic(6, 128), Attribute::number(2, 100_000)],
                }],
            },
            Proposal {
                number: 1,
                protocol: 2,
                spi: vec![5, 6, 7, 8],
                transforms: vec![Transform {
                    number: 1,
                    transform_id: 3,
                    attributes: vec![],
                }],
            },
        ]);
        let mut bytes = Vec::new();
        sa.write(&mut bytes);
        let back = SaPayload::parse(&bytes).unwrap();
        assert_eq!(back, sa);
        assert_eq!(
            back.proposals[0].transforms[0].attributes[1].as_u64(),
            Some(100_000)
        );
    }

    #[test]
    fn wrong_transform_count_is_rejected() {
        let sa = SaPayload::new(vec![Proposal {
            number: 1,
            protocol: 3,
            spi: vec![1, 2, 3, 4],
            transforms: vec![Transform {
                number: 1,
                transform_id: 12,
                attributes: vec![],
            }],
        }]);
        let mut bytes = Vec::new();
        sa.write(&mut bytes);
        bytes[8 + 4 + 3] = 2;
        assert_eq!(SaPayload::parse(&bytes), Err(CodecError::BadSa));
    }
}
