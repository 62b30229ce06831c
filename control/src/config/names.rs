//! Interface and unit names (`ge-0/0/0`, `sp-1/2/0.1`, `ams0.10`) and what kind of port each is.

use std::fmt;
use std::str::FromStr;

/// What an interface is, from its name's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum InterfaceKind {
    /// `ge-`, `xe-`, `et-`: a port backed by a DPDK device.
    Physical,
    /// `sp-` (adaptive services PIC).
    ServicesSp,
    /// `ms-` (multiservices PIC or MIC).
    ServicesMs,
    /// `amsN`: an aggregated multiservices interface over `mams-` members.
    Aggregated,
    /// `mams-`: a member of an `ams` bundle.
    AggregatedMember,
}

impl InterfaceKind {
    /// Services interfaces carry service-set units (`service-domain`, `dial-options`).
    pub fn is_services(self) -> bool {
        matches!(
            self,
            InterfaceKind::ServicesSp | InterfaceKind::ServicesMs | InterfaceKind::Aggregated
        )
    }

    /// For tunnel distribution, `ms-` interfaces form one family and `ams`/`sp-` the other.
    pub fn distribution_family(self) -> &'static str {
        match self {
            InterfaceKind::ServicesMs => "ms-",
            _ => "ams-/sp-",
        }
    }
}

fn is_fpc_pic_port(text: &str) -> bool {
    let parts: Vec<&str> = text.split('/').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The kind of an interface name, or why dyntun does not accept it.
pub fn interface_kind(name: &str) -> Result<InterfaceKind, String> {
    let with_slot = [
        ("ge-", InterfaceKind::Physical),
        ("xe-", InterfaceKind::Physical),
        ("et-", InterfaceKind::Physical),
        ("sp-", InterfaceKind::ServicesSp),
        ("ms-", InterfaceKind::ServicesMs),
        ("mams-", InterfaceKind::AggregatedMember),
    ];
    for (prefix, kind) in with_slot {
        if let Some(rest) = name.strip_prefix(prefix) {
            return if is_fpc_pic_port(rest) {
                Ok(kind)
            } else {
                Err(format!(
                    "interface name '{name}' should be {prefix}FPC/PIC/PORT (e.g. {prefix}1/2/0)"
                ))
            };
        }
    }
    if let Some(n) = name.strip_prefix("ams") {
        if !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(InterfaceKind::Aggregated);
        }
    }
    let known_elsewhere = [
        "lo", "ae", "fxp", "em", "so-", "at-", "gr-", "ip-", "lt-", "irb", "vlan",
    ];
    if known_elsewhere.iter().any(|p| name.starts_with(p)) {
        return Err(format!(
            "interface '{name}' is of a Junos interface type that dyntun does not support"
        ));
    }
    Err(format!(
        "'{name}' is not an interface name dyntun knows (ge-, xe-, et-, sp-, ms-, mams-, amsN)"
    ))
}

/// A logical interface: `INTERFACE.UNIT`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct UnitName {
    pub interface: String,
    pub unit: u32,
}

impl UnitName {
    pub fn new(interface: impl Into<String>, unit: u32) -> Self {
        UnitName {
            interface: interface.into(),
            unit,
        }
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.interface, self.unit)
    }
}

/// Junos' largest logical unit number.
pub const MAX_UNIT: u32 = 16385;

pub fn parse_unit_number(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n <= MAX_UNIT && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "unit '{text}' should be a number from 0 to {MAX_UNIT}"
        )),
    }
}

impl FromStr for UnitName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((interface, unit)) = text.rsplit_once('.') else {
            return Err(format!(
                "'{text}' should name a logical interface as INTERFACE.UNIT (e.g. sp-1/2/0.1)"
            ));
        };
        interface_kind(interface)?;
        Ok(UnitName::new(interface, parse_unit_number(unit)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_names() {
        assert_eq!(interface_kind("ge-0/0/0"), Ok(InterfaceKind::Physical));
        assert_eq!(interface_kind("ms-1/2/0"), Ok(InterfaceKind::ServicesMs));
        assert_eq!(interface_kind("ams0"), Ok(InterfaceKind::Aggregated));
        assert_eq!(
            interface_kind("mams-1/0/0"),
            Ok(InterfaceKind::AggregatedMember)
        );
        assert!(interface_kind("ge-0/0").is_err());
        assert!(interface_kind("lo0")
            .unwrap_err()
            .contains("does not support"));
        assert!(interface_kind("bogus").is_err());
    }

    #[test]
    fn unit_names() {
        let u: UnitName = "sp-1/2/0.1".parse().unwrap();
        assert_eq!(u, UnitName::new("sp-1/2/0", 1));
        assert_eq!(u.to_string(), "sp-1/2/0.1");
        assert!("sp-1/2/0".parse::<UnitName>().is_err());
        assert!("sp-1/2/0.x".parse::<UnitName>().is_err());
        assert!("sp-1/2/0.99999".parse::<UnitName>().is_err());
        assert!("ams0.-1".parse::<UnitName>().is_err());
    }
}
