//! The `dyntun run` worker loop on real DPDK (net_ring ports, real mbufs): ESP that another
//! worker received for an SA this one owns arrives through the hand-off ring, is taken as one
//! burst, opened and sent to the LAN in the order it was handed over, every frame counted once.

mod pipeline_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::esp::OutboundSa;
use dataplane::pipeline::dpdk_loop::{run_worker, WorkerIo};
use dataplane::pipeline::GatewaySas;
use dataplane::tables::{handoff_mesh, update_queue, WorkerId};
use dpdk::{Eal, Mbuf, MbufBurst, Mempool, Port, PortConfig, RingSharing};
use pipeline_support::*;

const FRAMES: u8 = 20;

fn eal() -> Mempool {
    Eal::init_global_in_memory(128).unwrap_or_else(|e| panic!("EAL: {e}"));
    Mempool::create("handoff", 511, 0, Mempool::DEFAULT_DATA_ROOM).expect("pool")
}

/// What worker 1 would hand over: ESP from the peer under worker 0's inbound SA, as the
/// outside port received it.
fn handed_esp(pool: &Mempool, peer: &mut OutboundSa, tag: u8) -> Mbuf {
    let inner = ipv4_udp("172.16.2.1", "172.16.1.10", &[b'h', b'o', tag]);
    let mut esp = HeapBuf::from_slice(&inner);
    peer.encapsulate(&mut esp, 1).0.expect("sealed");
    let framed = frame(GW_MAC_OUT, ISP_MAC, esp.data());
    let mut mbuf = pool.alloc().expect("mbuf");
    mbuf.append(framed.data().len())
        .expect("room")
        .copy_from_slice(framed.data());
    // As the PMD would have set it.
    mbuf.set_port(OUTSIDE.0);
    mbuf
}

#[test]
fn esp_handed_to_the_owner_is_opened_as_one_burst_and_all_of_it_reaches_the_lan_in_order() {
    let pool = eal();
    // The worker transmits on the inside port; its ring partner is where the test reads.
    let (wire, inside) = Port::ring_pair("hand_wire", "hand_inside", 256).unwrap();
    assert_eq!(
        (wire.id(), inside.id()),
        (OUTSIDE.0, INSIDE.0),
        "the rig's port ids"
    );
    let mut wire_queues = wire.configure(&PortConfig::default(), pool).unwrap();
    let mut inside_queues = inside.configure(&PortConfig::default(), pool).unwrap();
    wire.start().unwrap();
    inside.start().unwrap();

    let rig = rig();
    rig.neighbors
        .insert(INSIDE, "172.16.1.10".parse().unwrap(), LAN_HOST_MAC)
        .unwrap();
    let mut mesh = handoff_mesh::<Mbuf>(2, 64);
    let mut other = mesh.pop().unwrap();
    let owner = mesh.pop().unwrap();
    let mut peer = reference_peer();
    // All of them wait in the ring before the owner looks: one take gets them all.
    for tag in 0..FRAMES {
        assert!(other
            .send(WorkerId(0), handed_esp(&pool, &mut peer, tag))
            .is_ok());
    }

    let (punt, _punted) = dpdk::ring(
        "handoff_punt",
        64,
        RingSharing {
            multi_producer: false,
            multi_consumer: false,
        },
    )
    .unwrap();
    let (_updates_tx, updates) = update_queue::<GatewaySas>(16);
    let stop = Arc::new(AtomicBool::new(false));
    let mut io = WorkerIo {
        rx: Vec::new(),
        tx: vec![None, Some(inside_queues.tx.remove(0))],
        punt,
        injected: Vec::new(),
        handoff: owner,
        updates,
        pool,
        stop: stop.clone(),
        idle_polls_before_sleep: 64,
        idle_sleep: Duration::from_millis(1),
    };
    let mut worker = rig.worker;
    let running = std::thread::spawn(move || run_worker(&mut worker, &mut io));

    let mut lan = Vec::new();
    let mut received = MbufBurst::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lan.len() < usize::from(FRAMES) && Instant::now() < deadline {
        if wire_queues.rx[0].rx(&mut received) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        lan.extend(received.drain().map(|m| m.data().to_vec()));
    }
    stop.store(true, Ordering::Relaxed);
    running.join().unwrap();

    let snapshot = rig.counters.snapshot();
    assert_eq!(lan.len(), usize::from(FRAMES), "{snapshot:?}");
    for (tag, frame) in lan.iter().enumerate() {
        assert_eq!(&frame[0..6], &LAN_HOST_MAC);
        assert_eq!(&frame[6..12], &GW_MAC_IN);
        assert_eq!(&frame[frame.len() - 3..], &[b'h', b'o', tag as u8]);
    }
    let frames = u64::from(FRAMES);
    assert_eq!(
        (snapshot.rx_packets, snapshot.decrypted, snapshot.tx_packets),
        (frames, frames, frames),
        "{snapshot:?}"
    );
    assert_eq!(
        (
            snapshot.handed_off,
            snapshot.drop_sa_processing,
            snapshot.drop_tx_full
        ),
        (0, 0, 0),
        "{snapshot:?}"
    );
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
}
