//! Two ports joined by DPDK rings: frames go through the real ethdev rx/tx paths byte for byte,
//! partial transmits leave the rest with the caller, and no mbuf leaks or is freed twice.

mod common;

use dpdk::{Mbuf, MbufBurst, Mempool, Port, PortConfig, RxQueue, TxQueue, BURST_SIZE};

struct LinkedPorts {
    pool: Mempool,
    a_rx: RxQueue,
    a_tx: TxQueue,
    b_rx: RxQueue,
    b_tx: TxQueue,
}

fn linked_ports(ring_size: u32) -> LinkedPorts {
    common::eal();
    let pool = Mempool::create(
        &common::unique("ringpool"),
        1023,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .expect("pool");
    let (a, b) = Port::ring_pair(&common::unique("rpa"), &common::unique("rpb"), ring_size)
        .expect("ring pair");
    let mut qa = a
        .configure(&PortConfig::default(), pool)
        .expect("configure a");
    let mut qb = b
        .configure(&PortConfig::default(), pool)
        .expect("configure b");
    a.start().expect("start a");
    b.start().expect("start b");
    LinkedPorts {
        pool,
        a_rx: qa.rx.remove(0),
        a_tx: qa.tx.remove(0),
        b_rx: qb.rx.remove(0),
        b_tx: qb.tx.remove(0),
    }
}

/// Frame `i`: broadcast destination, a locally administered source carrying `i`, a local
/// experimental EtherType, and a payload whose length and bytes depend on `i`.
fn frame(i: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, i as u8]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..(46 + i * 37)).map(|j| (i * 31 + j * 7) as u8));
    f
}

fn mbuf_with(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("pool has mbufs");
    m.append(bytes.len()).expect("fits").copy_from_slice(bytes);
    m
}

fn receive(rx: &mut RxQueue, want: usize) -> Vec<Mbuf> {
    let mut got = Vec::new();
    let mut burst = MbufBurst::new();
    for _ in 0..100_000 {
        rx.rx(&mut burst);
        got.extend(burst.drain());
        if got.len() >= want {
            break;
        }
    }
    got
}

#[test]
fn a_burst_of_distinct_frames_arrives_byte_for_byte_in_both_directions() {
    let mut link = linked_ports(1024);
    let frames: Vec<Vec<u8>> = (0..BURST_SIZE).map(frame).collect();

    let mut burst = MbufBurst::new();
    for f in &frames {
        burst.push(mbuf_with(&link.pool, f)).expect("room");
    }
    assert_eq!(link.a_tx.tx(&mut burst), BURST_SIZE);
    assert!(burst.is_empty());
    let got = receive(&mut link.b_rx, BURST_SIZE);
    let got_bytes: Vec<&[u8]> = got.iter().map(|m| m.data()).collect();
    let want_bytes: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert_eq!(got_bytes, want_bytes);
    assert!(
        receive(&mut link.a_rx, 1).is_empty(),
        "a must not hear itself"
    );

    // Back the other way, reusing the received mbufs after rewriting one byte each.
    let mut burst = MbufBurst::new();
    for mut m in got {
        m.data_mut()[0] = 0x33;
        burst.push(m).expect("room");
    }
    assert_eq!(link.b_tx.tx(&mut burst), BURST_SIZE);
    let back = receive(&mut link.a_rx, BURST_SIZE);
    assert_eq!(back.len(), BURST_SIZE);
    for (m, f) in back.iter().zip(&frames) {
        assert_eq!(m.data()[0], 0x33);
        assert_eq!(&m.data()[1..], &f[1..]);
    }
    drop(back);
    assert_eq!(
        link.pool.in_use(),
        0,
        "every mbuf went back to the pool exactly once"
    );
}

#[test]
fn a_partial_transmit_leaves_the_unsent_mbufs_with_the_caller() {
    let mut link = linked_ports(8);
    let mut burst = MbufBurst::new();
    for i in 0..BURST_SIZE {
        burst.push(mbuf_with(&link.pool, &frame(i))).expect("room");
    }
    let sent = link.a_tx.tx(&mut burst);
    assert_eq!(sent, 8, "the ring between the ports holds 8");
    assert_eq!(burst.len(), BURST_SIZE - 8);
    // The unsent ones keep their order: the front is now frame 8.
    assert_eq!(burst.as_slice()[0].data(), frame(8).as_slice());
    assert_eq!(link.pool.in_use() as usize, BURST_SIZE);

    // Retry after the peer drains the ring.
    let first = receive(&mut link.b_rx, 8);
    assert_eq!(first.len(), 8);
    assert_eq!(link.a_tx.tx(&mut burst), 8);
    assert_eq!(burst.as_slice()[0].data(), frame(16).as_slice());

    drop(first);
    drop(burst); // frees the 16 never sent
    drop(receive(&mut link.b_rx, 8));
    assert_eq!(link.pool.in_use(), 0);
}

#[test]
fn ports_report_their_name_mac_link_and_counters() {
    let mut link = linked_ports(64);
    let port = link.a_tx.port();
    assert!(port.name().contains("rpa"), "{}", port.name());
    assert_eq!(Port::by_name(&port.name()).expect("lookup"), port);
    assert!(port.link().expect("link").up);
    // Ring ports have an all-zero MAC; the af_packet test checks a real one.
    port.mac_address().expect("mac");
    assert!(port.info().expect("info").driver.contains("ring"));
    port.set_promiscuous(true).expect("promiscuous");

    let before = port.stats().expect("stats");
    let mut burst = MbufBurst::new();
    for i in 0..3 {
        burst.push(mbuf_with(&link.pool, &frame(i))).expect("room");
    }
    assert_eq!(link.a_tx.tx(&mut burst), 3);
    let after = port.stats().expect("stats");
    assert_eq!(after.tx_packets - before.tx_packets, 3);
    drop(receive(&mut link.b_rx, 3));
    assert!(Port::all().contains(&port));
}
