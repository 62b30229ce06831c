//! The namespaces for the IKE set-up rate benchmark:
//!
//! ```text
//!   [load: 30.0.0.0+i/32 on lo, one per peer]
//!        todyn 10.1.1.254 ─── out0 [dyntun: af_packet, 10.1.1.1] in0 ─── lan0
//!        toswan 10.9.9.254 ── wan0 [charon: 10.9.9.1]
//! ```
//!
//! Every peer address lives in the load namespace, which is also each responder's next hop
//! towards the peers, so replies come back to the generator and nothing leaves the namespaces.
//! All three namespaces go when the topology is dropped (which also removes the veths).

use crate::ike_load::peer_address;
use crate::netns::Namespace;

pub const DYNTUN_ADDRESS: &str = "10.1.1.1";
pub const DYNTUN_NEXT_HOP: &str = "10.1.1.254";
pub const CHARON_ADDRESS: &str = "10.9.9.1";
pub const DYNTUN_OUTSIDE_IFACE: &str = "out0";
pub const DYNTUN_INSIDE_IFACE: &str = "in0";

pub struct IkeRateTopology {
    pub load: Namespace,
    pub dyntun: Namespace,
    pub charon: Namespace,
}

impl IkeRateTopology {
    /// Builds the namespaces (names carry `tag`, which should include the process id) with
    /// `peers` source addresses in the load namespace.
    pub fn build(tag: &str, peers: usize) -> Result<IkeRateTopology, String> {
        let load = Namespace::create(&format!("{tag}l"))?;
        let dyntun = Namespace::create(&format!("{tag}d"))?;
        let charon = Namespace::create(&format!("{tag}s"))?;
        let topology = IkeRateTopology {
            load,
            dyntun,
            charon,
        };
        topology.wire(peers)?;
        Ok(topology)
    }

    fn wire(&self, peers: usize) -> Result<(), String> {
        let (load, dyn_ns, swan) = (self.load.name(), self.dyntun.name(), self.charon.name());
        let link = |a: &str, a_ns: &str, b: &str, b_ns: &str| {
            self.load.ip(&[
                "link", "add", a, "netns", a_ns, "type", "veth", "peer", "name", b, "netns", b_ns,
            ])
        };
        // `ip -n load link add … netns X` creates each end directly in its namespace.
        link(DYNTUN_OUTSIDE_IFACE, dyn_ns, "todyn", load)?;
        link(DYNTUN_INSIDE_IFACE, dyn_ns, "lan0", dyn_ns)?;
        link("wan0", swan, "toswan", load)?;

        for iface in [DYNTUN_OUTSIDE_IFACE, DYNTUN_INSIDE_IFACE] {
            // af_packet owns these ports; dyntun answers ARP itself.
            self.dyntun
                .ip(&["link", "set", iface, "up", "promisc", "on"])?;
            self.dyntun
                .sysctl(&format!("net.ipv6.conf.{iface}.disable_ipv6=1"))?;
        }
        self.dyntun.ip(&["link", "set", "lan0", "up"])?;

        self.load.ip(&[
            "addr",
            "add",
            &format!("{DYNTUN_NEXT_HOP}/24"),
            "dev",
            "todyn",
        ])?;
        self.load
            .ip(&["addr", "add", "10.9.9.254/24", "dev", "toswan"])?;
        self.load.ip(&["link", "set", "todyn", "up"])?;
        self.load.ip(&["link", "set", "toswan", "up"])?;

        self.charon.ip(&[
            "addr",
            "add",
            &format!("{CHARON_ADDRESS}/24"),
            "dev",
            "wan0",
        ])?;
        self.charon.ip(&["link", "set", "wan0", "up"])?;
        self.charon
            .ip(&["route", "add", "default", "via", "10.9.9.254"])?;

        let mut batch = String::with_capacity(peers * 40);
        for i in 0..peers {
            batch.push_str(&format!("addr add {}/32 dev lo\n", peer_address(i)));
        }
        self.load.ip_batch(&batch)
    }
}
