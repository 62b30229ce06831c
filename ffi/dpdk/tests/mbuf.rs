//! Owned mbufs and bursts on a real pool: window edges, and that every path out of a burst
//! (drop, clear, drain, retain, swap_remove, into_raw/from_raw) returns each mbuf exactly once.

mod common;

use dpdk::{Mbuf, MbufBurst, Mempool, BURST_SIZE};

fn pool() -> Mempool {
    common::eal();
    Mempool::create(
        &common::unique("mbufpool"),
        255,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .expect("pool")
}

#[test]
fn window_edges_move_within_head_and_tailroom_and_refuse_beyond() {
    let pool = pool();
    let mut m = pool.alloc().expect("mbuf");
    assert_eq!(m.data_len(), 0);
    assert_eq!(m.headroom(), 128);
    let room = m.tailroom();
    assert_eq!(room, Mempool::DEFAULT_DATA_ROOM as usize - 128);

    m.append(100).expect("append").fill(0xab);
    assert_eq!(
        (m.data_len(), m.pkt_len(), m.tailroom()),
        (100, 100, room - 100)
    );
    assert!(m.append(room - 99).is_none(), "one past the tailroom");
    assert_eq!(m.data_len(), 100, "a refused append changes nothing");

    m.prepend(28).expect("prepend").fill(0x01);
    assert_eq!(m.headroom(), 100);
    assert!(m.prepend(101).is_none());
    assert_eq!(&m.data()[..2], &[0x01, 0x01]);
    assert_eq!(m.data()[28], 0xab);

    assert!(m.adj(28));
    assert_eq!(m.data()[0], 0xab);
    assert!(m.trim(90));
    assert_eq!(m.data_len(), 10);
    assert!(!m.trim(11));
    assert!(!m.adj(11));
    assert!(m.adj(10));
    assert_eq!(m.pkt_len(), 0);
    drop(m);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn raw_round_trip_transfers_ownership_without_freeing() {
    let pool = pool();
    let m = pool.alloc().expect("mbuf");
    let raw = m.into_raw();
    assert_eq!(pool.in_use(), 1, "into_raw must not free");
    // SAFETY: `raw` came from into_raw just above and is used once.
    let m = unsafe { Mbuf::from_raw(raw) };
    drop(m);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn every_way_out_of_a_burst_frees_each_mbuf_exactly_once() {
    let pool = pool();
    let mut burst = MbufBurst::new();
    assert!(pool.alloc_into(&mut burst, BURST_SIZE));
    assert!(burst.is_full());
    assert!(!pool.alloc_into(&mut burst, 1), "no room left in the burst");
    let extra = pool.alloc().expect("mbuf");
    let extra = burst
        .push(extra)
        .expect_err("full burst hands the mbuf back");
    drop(extra);
    assert_eq!(pool.in_use() as usize, BURST_SIZE);

    for (i, m) in burst.as_mut_slice().iter_mut().enumerate() {
        m.append(1).expect("room")[0] = i as u8;
    }
    burst.retain(|m| m.data()[0] % 2 == 0);
    assert_eq!(burst.len(), BURST_SIZE / 2);
    let kept: Vec<u8> = burst.as_slice().iter().map(|m| m.data()[0]).collect();
    assert_eq!(kept, (0..BURST_SIZE as u8).step_by(2).collect::<Vec<_>>());
    assert_eq!(pool.in_use() as usize, BURST_SIZE / 2);

    let removed = burst.swap_remove(0).expect("index 0");
    assert_eq!(removed.data()[0], 0);
    assert_eq!(
        burst.as_slice()[0].data()[0],
        30,
        "the last one took its place"
    );
    drop(removed);
    assert!(burst.swap_remove(99).is_none());

    let mut drain = burst.drain();
    let first = drain.next().expect("one");
    drop(drain); // the rest are freed here
    assert!(burst.is_empty());
    assert_eq!(pool.in_use(), 1);
    drop(first);

    assert!(pool.alloc_into(&mut burst, 5));
    burst.clear();
    assert!(pool.alloc_into(&mut burst, 7));
    drop(burst);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn an_exhausted_pool_says_so_instead_of_failing_later() {
    common::eal();
    let pool = Mempool::create(&common::unique("tinypool"), 8, 0, 512).expect("pool");
    let mut held: Vec<Mbuf> = std::iter::from_fn(|| pool.alloc()).take(100).collect();
    assert_eq!(held.len(), 8);
    assert_eq!(pool.available(), 0);
    let mut burst = MbufBurst::new();
    assert!(!pool.alloc_into(&mut burst, 1));
    assert!(burst.is_empty());
    held.clear();
    assert_eq!(pool.available(), 8);
}

/// The Rust side reads and writes mbuf header fields through the bindgen layout; DPDK's own
/// inline functions (compiled in C) must see exactly the same values.
#[test]
fn the_rust_view_of_the_mbuf_header_matches_dpdks_c_view() {
    let pool = pool();
    let mut m = pool.alloc().expect("mbuf");
    m.append(300).expect("room").fill(7);
    m.prepend(14).expect("room");
    assert!(m.adj(2));
    assert!(m.trim(5));
    let raw = m.as_raw();
    // SAFETY: `raw` is the live mbuf owned by `m`; the shim functions only read it.
    unsafe {
        assert_eq!(
            dpdk::sys::dyntun_pktmbuf_data_len(raw) as usize,
            m.data_len()
        );
        assert_eq!(dpdk::sys::dyntun_pktmbuf_pkt_len(raw) as usize, m.pkt_len());
        assert_eq!(
            dpdk::sys::dyntun_pktmbuf_headroom(raw) as usize,
            m.headroom()
        );
        assert_eq!(
            dpdk::sys::dyntun_pktmbuf_tailroom(raw) as usize,
            m.tailroom()
        );
        assert_eq!(
            dpdk::sys::dyntun_pktmbuf_data(raw) as *const u8,
            m.data().as_ptr()
        );
        assert_eq!(dpdk::sys::dyntun_pktmbuf_is_contiguous(raw), 1);
        // And the other way: DPDK's C prepend is seen by the Rust view.
        let before = m.headroom();
        assert!(!dpdk::sys::dyntun_pktmbuf_prepend(raw, 4).is_null());
        assert_eq!(m.headroom(), before - 4);
        assert_eq!(m.data_len(), 14 - 2 + 300 - 5 + 4);
    }
}
