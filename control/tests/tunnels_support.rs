//! Shared set-up for the tunnel scenario tests: a topology builder, SA specs, and a set of
//! in-memory workers that apply the manager's updates exactly as worker threads do.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use control::tunnels::{
    CheckedSpecs, ChildSaUp, PicId, PicInfo, PoolInfo, ServiceSetInfo, ServicesInterface, SpecSas,
    TunnelManager, TunnelRefusal, TunnelTopology, UnitInfo, UnitMode, WorkerQueue,
};
use dataplane::prefix::Prefix;
use dataplane::sa::{
    Cipher, DfMode, Direction, Encapsulation, Integrity, IpsecProtocol, Lifetime, PeerEndpoint,
    ProxyPair, SaKeys, SaSpec,
};
use dataplane::tables::{TunnelId, WorkerId, WorkerTables};

pub const PROFILE: &str = "dynamic-peers";
pub const LOCAL_GATEWAY: &str = "10.1.1.1";

pub fn p(text: &str) -> Prefix {
    text.parse().expect("test prefix")
}

pub fn a(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

pub fn pic(id: u16, name: &str, workers: &[u16]) -> PicInfo {
    PicInfo {
        id: PicId(id),
        name: name.to_string(),
        workers: workers.iter().map(|w| WorkerId(*w)).collect(),
    }
}

/// A next-hop service set on `interface` (`ms-1/0/0`) using pool `pool` on that interface.
pub fn service_set(name: &str, pic_id: u16, interface: &str, vrf: Option<&str>) -> ServiceSetInfo {
    ServiceSetInfo {
        name: name.to_string(),
        interface: ServicesInterface::Pic(PicId(pic_id)),
        inside_unit: format!("{interface}.1"),
        outside_unit: format!("{interface}.2"),
        vrf: vrf.map(str::to_string),
        next_hop_style: true,
        access_profile: PROFILE.to_string(),
        local_gateway: a(LOCAL_GATEWAY),
        local_gateway_vrf: None,
        pool_id: Some("1".to_string()),
    }
}

pub fn dedicated_units(interface: &str, units: std::ops::Range<u32>) -> Vec<UnitInfo> {
    units
        .map(|u| UnitInfo {
            name: format!("{interface}.{u}"),
            mode: UnitMode::Dedicated,
        })
        .collect()
}

pub fn pool(units: Vec<UnitInfo>) -> PoolInfo {
    PoolInfo {
        id: "1".to_string(),
        units,
    }
}

/// The reference example: one PIC, one next-hop service set, a dedicated pool of `units`.
pub fn single_pic(vrf: Option<&str>, units: u32) -> TunnelTopology {
    TunnelTopology {
        pics: vec![pic(0, "ms-1/0/0", &[0])],
        service_sets: vec![service_set("dyn-sset", 0, "ms-1/0/0", vrf)],
        pools: vec![pool(dedicated_units("ms-1/0/0", 10..10 + units))],
    }
}

pub fn sa(spi: u32, direction: Direction) -> SaSpec {
    SaSpec {
        spi,
        direction,
        protocol: IpsecProtocol::Esp,
        cipher: Cipher::AesCbc128,
        integrity: Integrity::HmacSha1_96,
        keys: SaKeys {
            encryption: vec![0x11; 16],
            integrity: vec![0x22; 20],
        },
        local: a(LOCAL_GATEWAY),
        remote: a("10.2.2.2"),
        encapsulation: Encapsulation::Udp {
            local_port: 4500,
            remote_port: 4500,
        },
        replay_window: 64,
        extended_sequence_numbers: false,
        lifetime: Lifetime::default(),
        df_mode: DfMode::Copy,
        tunnel_mtu: None,
    }
}

pub type Manager = TunnelManager<SpecSas, CheckedSpecs>;

/// A manager plus in-memory workers that drain the update queues on `pump`.
pub struct Gateway {
    pub manager: Manager,
    pub queues: Vec<WorkerQueue<SpecSas>>,
    pub workers: Vec<WorkerTables<SpecSas>>,
    next_outbound_spi: u32,
}

impl Gateway {
    pub fn new(topology: TunnelTopology) -> Self {
        let (manager, queues) =
            TunnelManager::new(topology, CheckedSpecs, 1024).expect("valid topology");
        let workers = queues.iter().map(|q| WorkerTables::new(q.worker)).collect();
        let mut gateway = Gateway {
            manager,
            queues,
            workers,
            next_outbound_spi: 0x5000_0000,
        };
        gateway.pump();
        gateway
    }

    pub fn adopt_queues(&mut self, queues: Vec<WorkerQueue<SpecSas>>) {
        for queue in queues {
            self.workers.push(WorkerTables::new(queue.worker));
            self.queues.push(queue);
        }
        self.pump();
    }

    /// Applies every queued update on every worker, failing the test on a rejected update.
    pub fn pump(&mut self) {
        self.manager.flush();
        for (queue, worker) in self.queues.iter_mut().zip(self.workers.iter_mut()) {
            worker.apply_pending(&mut queue.updates, usize::MAX, |kind, error| {
                panic!("worker rejected {kind}: {error}")
            });
        }
        assert_eq!(self.manager.flush(), 0, "backlog left after pumping");
    }

    pub fn worker(&mut self, id: u16) -> &mut WorkerTables<SpecSas> {
        self.workers
            .iter_mut()
            .find(|w| w.worker() == WorkerId(id))
            .expect("worker exists")
    }

    /// What the IKE side does for one Quick Mode: reserve the inbound SPI, then report it up.
    pub fn quick_mode(
        &mut self,
        peer: &str,
        local: &str,
        remote: &str,
    ) -> Result<(TunnelId, u32, u32), TunnelRefusal> {
        let inbound_spi = self.manager.allocate_inbound_spi(PROFILE, a(peer))?;
        self.next_outbound_spi += 1;
        let outbound_spi = self.next_outbound_spi;
        let up = ChildSaUp {
            access_profile: PROFILE.to_string(),
            peer: PeerEndpoint {
                local: SocketAddr::new(a(LOCAL_GATEWAY), 4500),
                remote: SocketAddr::new(a(peer), 4500),
            },
            proxy: ProxyPair {
                local: p(local),
                remote: p(remote),
                protocol: 0,
                local_port: 0,
                remote_port: 0,
            },
            inbound: vec![sa(inbound_spi, Direction::Inbound)],
            outbound: vec![sa(outbound_spi, Direction::Outbound)],
        };
        let tunnel = self.manager.child_sa_up(up)?;
        self.pump();
        Ok((tunnel, inbound_spi, outbound_spi))
    }

    /// Asserts that nothing of any tunnel is left anywhere.
    pub fn assert_no_tunnel_state(&mut self) {
        let view = self.manager.view();
        assert!(view.tunnels.is_empty(), "tunnels left: {:?}", view.tunnels);
        for pool in &view.pools {
            assert!(
                pool.units.iter().all(|u| u.holders.is_empty()),
                "pool units still held: {pool:?}"
            );
        }
        for table in &view.route_tables {
            assert!(
                table
                    .routes
                    .iter()
                    .all(|r| !(r.protocol == "Static" && r.preference == 1)),
                "reverse route left in {}: {:?}",
                table.table,
                table.routes
            );
        }
        assert_eq!(self.manager.tunnel_count(), 0);
        assert_eq!(self.manager.allocated_spi_count(), 0, "SPIs leaked");
        assert_eq!(self.manager.reserved_spi_count(), 0);
        assert_eq!(
            self.manager.placed_peer_count(),
            0,
            "placement holds leaked"
        );
        assert_eq!(self.manager.unit_holds(), 0);
        for worker in &self.workers {
            assert_eq!(
                worker.rules.dynamic_count(),
                0,
                "rules left on {:?}",
                worker.worker()
            );
            assert_eq!(worker.sas.inbound_count(), 0, "inbound SAs left");
            assert_eq!(worker.sas.outbound_count(), 0, "outbound SAs left");
            for (_, fib) in worker.fibs.iter() {
                assert!(
                    fib.routes().iter().all(|r| !r.reverse_route),
                    "reverse route left on {:?}",
                    worker.worker()
                );
            }
        }
    }
}
