//! Rings carrying owned values and mbufs, a closure running on a real worker lcore, and a std
//! thread registered with EAL.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk::{lcore, ring, Mbuf, MbufBurst, Mempool, RingSharing};

struct CountsDrops(Arc<AtomicUsize>);

impl Drop for CountsDrops {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_ring_hands_items_back_when_full_and_drops_leftovers_with_itself() {
    common::eal();
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) =
        ring::<Box<CountsDrops>>(&common::unique("boxring"), 3, RingSharing::default())
            .expect("ring");
    assert!(tx.try_clone().is_none(), "single-producer ring");
    assert!(rx.try_clone().is_none(), "single-consumer ring");
    for _ in 0..3 {
        assert!(tx.enqueue(Box::new(CountsDrops(drops.clone()))).is_ok());
    }
    let refused = tx
        .enqueue(Box::new(CountsDrops(drops.clone())))
        .expect_err("full");
    drop(refused);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(rx.len(), 3);
    drop(rx.dequeue().expect("one"));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    drop(tx);
    drop(rx); // two items still inside
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn multi_producer_rings_give_out_more_producers() {
    common::eal();
    let sharing = RingSharing {
        multi_producer: true,
        multi_consumer: false,
    };
    let (tx, mut rx) = ring::<Box<u32>>(&common::unique("mpring"), 64, sharing).expect("ring");
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let mut tx = tx.try_clone().expect("multi-producer");
            std::thread::spawn(move || {
                for i in 0..10 {
                    tx.enqueue(Box::new(t * 100 + i)).expect("room");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let mut got: Vec<u32> = std::iter::from_fn(|| rx.dequeue().map(|b| *b)).collect();
    got.sort_unstable();
    let want: Vec<u32> = (0..4)
        .flat_map(|t| (0..10).map(move |i| t * 100 + i))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_worker_lcore_echoes_mbufs_through_rings() {
    common::eal();
    let pool = Mempool::create(&common::unique("lcpool"), 511, 32, 512).expect("pool");
    let (mut to_worker, mut worker_in) =
        ring::<Mbuf>(&common::unique("towrk"), 256, RingSharing::default()).expect("ring");
    let (mut worker_out, mut from_worker) =
        ring::<Mbuf>(&common::unique("fromwrk"), 256, RingSharing::default()).expect("ring");

    let worker = *lcore::workers()
        .first()
        .expect("EAL started with a worker lcore");
    assert_ne!(worker, lcore::main_lcore());
    const TOTAL: usize = 200;
    let running = lcore::launch(worker, move || {
        let on = lcore::current();
        let mut burst = MbufBurst::new();
        let mut echoed = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while echoed < TOTAL && Instant::now() < deadline {
            worker_in.dequeue_burst(&mut burst);
            for m in burst.as_mut_slice() {
                m.data_mut()[0] += 1;
            }
            echoed += worker_out.enqueue_burst(&mut burst);
        }
        if on == Some(worker) {
            echoed as i32
        } else {
            -2
        }
    })
    .expect("launch");

    let mut sent = 0;
    let mut back = Vec::new();
    let mut burst = MbufBurst::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while back.len() < TOTAL && Instant::now() < deadline {
        if sent < TOTAL {
            let mut m = pool.alloc().expect("mbuf");
            m.append(2)
                .expect("room")
                .copy_from_slice(&[sent as u8, 0x5a]);
            if let Err(m) = to_worker.enqueue(m) {
                drop(m);
            } else {
                sent += 1;
            }
        }
        from_worker.dequeue_burst(&mut burst);
        back.extend(burst.drain());
    }
    assert_eq!(
        running.wait(),
        TOTAL as i32,
        "worker ran on its lcore and echoed all"
    );
    let got: Vec<[u8; 2]> = back.iter().map(|m| [m.data()[0], m.data()[1]]).collect();
    let want: Vec<[u8; 2]> = (0..TOTAL)
        .map(|i| [(i as u8).wrapping_add(1), 0x5a])
        .collect();
    assert_eq!(got, want, "in order, each touched once by the worker");
    drop(back);
    assert_eq!(pool.in_use(), 0);

    // A panicking job is reported, not propagated into C, and the lcore is usable again.
    let panicked = lcore::launch(worker, || panic!("worker job failure on purpose"))
        .expect("launch")
        .wait();
    assert_eq!(panicked, -1);
    assert_eq!(lcore::launch(worker, || 7).expect("relaunch").wait(), 7);
}

#[test]
fn launching_on_an_lcore_that_is_not_a_worker_is_an_error() {
    common::eal();
    let err = lcore::launch(100, || 0).expect_err("lcore 100 is not enabled");
    assert!(err.to_string().contains("lcore 100"), "{err}");
}

#[test]
fn a_registered_std_thread_gets_an_lcore_id_and_can_use_pools() {
    common::eal();
    let pool = Mempool::create(&common::unique("regpool"), 63, 16, 512).expect("pool");
    let seen = std::thread::spawn(move || {
        assert_eq!(lcore::current(), None);
        let id = lcore::register_current_thread().expect("register");
        let m = pool.alloc().expect("mbuf");
        drop(m);
        lcore::unregister_current_thread();
        id
    })
    .join()
    .expect("thread");
    assert!(seen >= 2, "ids 0 and 1 are the -l set, got {seen}");
    assert!(lcore::tsc_hz() > 1_000_000);
    let t0 = lcore::tsc();
    assert!(lcore::tsc() >= t0);
}
