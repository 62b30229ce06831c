//! A worker thread applying table updates between "bursts" while the control thread installs
//! and removes tunnels through a deliberately small queue: every update arrives, in order, and
//! the worker never sees a route without its rule or a rule without its SA.

#[path = "tunnels_support.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use control::tunnels::{CheckedSpecs, ChildSaUp, TunnelManager, TunnelTopology};
use dataplane::sa::{Direction, PeerEndpoint, ProxyPair};
use dataplane::tables::{OutboundVerdict, VrfId, WorkerTables};
use support::*;

const TUNNELS: u32 = 2000;

fn remote_network(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (n << 8))
}

fn peer_address(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 | n))
}

#[test]
fn worker_applies_updates_while_control_pushes() {
    let mut topology: TunnelTopology = single_pic(None, 0);
    // Policy-based: every tunnel on the service set's inside unit.
    topology.service_sets[0].pool_id = None;
    topology.pools.clear();
    let (mut manager, mut queues) =
        TunnelManager::new(topology, CheckedSpecs, 64).expect("valid topology");
    let mut queue = queues.pop().expect("one worker");
    let stop = Arc::new(AtomicBool::new(false));
    let worker_stop = Arc::clone(&stop);

    let worker = thread::spawn(move || {
        let mut tables = WorkerTables::<control::tunnels::SpecSas>::new(queue.worker);
        let mut probe = 0u32;
        let mut bursts = 0u64;
        loop {
            // Read the flag before draining: anything sent before it was set is then seen.
            let stopping = worker_stop.load(Ordering::Acquire);
            let applied = tables.apply_pending(&mut queue.updates, 32, |kind, error| {
                panic!("rejected {kind}: {error}")
            });
            // A "burst" of lookups over the whole address space of the tunnels.
            for _ in 0..16 {
                probe = (probe + 1) % TUNNELS;
                let destination = IpAddr::V4(Ipv4Addr::from(u32::from(remote_network(probe)) | 9));
                let verdict =
                    tables.classify_outbound(VrfId::DEFAULT, a("172.16.1.5"), destination);
                if let OutboundVerdict::Encrypt { sas, .. } = verdict {
                    assert_eq!(sas.len(), 1);
                }
            }
            bursts += 1;
            if stopping && applied == 0 && queue.updates.is_empty() {
                return (tables, bursts);
            }
        }
    });

    let mut inbound_spis = Vec::new();
    for n in 0..TUNNELS {
        let peer = peer_address(n);
        let spi = manager.allocate_inbound_spi(PROFILE, peer).unwrap();
        let up = ChildSaUp {
            access_profile: PROFILE.into(),
            peer: PeerEndpoint {
                local: SocketAddr::new(a(LOCAL_GATEWAY), 4500),
                remote: SocketAddr::new(peer, 4500),
            },
            proxy: ProxyPair {
                local: p("172.16.1.0/24"),
                remote: dataplane::prefix::Prefix::new(IpAddr::V4(remote_network(n)), 24).unwrap(),
                protocol: 0,
                local_port: 0,
                remote_port: 0,
            },
            inbound: vec![sa(spi, Direction::Inbound)],
            outbound: vec![sa(0x7000_0000 + n, Direction::Outbound)],
        };
        manager.child_sa_up(up).unwrap();
        inbound_spis.push(spi);
        manager.flush();
    }
    for spi in inbound_spis.iter().step_by(2) {
        manager.child_sa_down(*spi);
        manager.flush();
    }
    while manager.flush() > 0 {
        thread::yield_now();
    }
    stop.store(true, Ordering::Release);
    let (mut tables, bursts) = worker.join().expect("worker thread");

    let kept = (TUNNELS / 2) as usize;
    assert!(bursts > 1);
    assert_eq!(tables.counters.updates_rejected, 0);
    assert_eq!(tables.counters.no_sa, 0, "a rule was visible before its SA");
    assert_eq!(
        tables.counters.no_rule, 0,
        "a route was visible without its rule"
    );
    assert_eq!(tables.rules.dynamic_count(), kept);
    assert_eq!(tables.sas.outbound_count(), kept);
    assert_eq!(tables.sas.inbound_count(), kept);
    for n in 0..TUNNELS {
        let destination = IpAddr::V4(Ipv4Addr::from(u32::from(remote_network(n)) | 1));
        let verdict = tables.classify_outbound(VrfId::DEFAULT, a("172.16.1.5"), destination);
        match (n % 2, verdict) {
            (1, OutboundVerdict::Encrypt { sas, .. }) => assert_eq!(sas[0].spi, 0x7000_0000 + n),
            (0, OutboundVerdict::Drop) => {}
            (_, _) => panic!("tunnel {n} in the wrong state"),
        }
    }
}
