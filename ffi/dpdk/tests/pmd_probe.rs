//! The virtual PMDs dyntun relies on load from Debian's plugin directory without any `-d`
//! option: each one hot-plugs, configures, starts, passes a frame where it can, and detaches.

mod common;

use dpdk::{MbufBurst, Mempool, Port, PortConfig};

fn probe_start_and_remove(devargs: &str, expected_driver: &str) {
    common::eal();
    let pool = Mempool::create(
        &common::unique("pmdpool"),
        511,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .expect("pool");
    let port = Port::probe(devargs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Port::probe(devargs).expect("already present"), port);
    let info = port.info().expect("info");
    assert!(
        info.driver.contains(expected_driver),
        "{devargs}: driver {}",
        info.driver
    );
    let mut queues = port
        .configure(&PortConfig::default(), pool)
        .expect("configure");
    port.start().expect("start");
    let mut burst = MbufBurst::new();
    assert!(pool.alloc_into(&mut burst, 4));
    for m in burst.as_mut_slice() {
        m.append(60).expect("room").fill(0x42);
    }
    let sent = queues.tx[0].tx(&mut burst);
    assert_eq!(
        sent + burst.len(),
        4,
        "tx either takes an mbuf or leaves it with us"
    );
    drop(burst);
    let mut got = MbufBurst::new();
    queues.rx[0].rx(&mut got);
    drop(got);
    port.remove().unwrap_or_else(|e| panic!("{e}"));
    assert!(Port::by_name(devargs).is_err());
}

#[test]
fn net_null_probes_and_passes_frames() {
    probe_start_and_remove(&format!("net_null{}", std::process::id()), "null");
}

#[test]
fn net_ring_probes_as_a_vdev() {
    probe_start_and_remove(&format!("net_ring{}", std::process::id()), "ring");
}

#[test]
fn net_memif_probes_as_a_server_on_an_abstract_socket() {
    let pid = std::process::id();
    probe_start_and_remove(
        &format!("net_memif{pid},role=server,id=0,socket=/run/dyntun-memif-{pid}.sock,socket-abstract=yes"),
        "memif",
    );
}

#[test]
fn several_queues_give_one_handle_each_and_too_many_is_a_clear_error() {
    common::eal();
    let pool = Mempool::create(
        &common::unique("mqpool"),
        1023,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .expect("pool");
    let port = Port::probe(&format!("net_null_mq{}", std::process::id())).expect("probe");
    let config = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        ..PortConfig::default()
    };
    let queues = port.configure(&config, pool).expect("configure");
    assert_eq!(
        queues.rx.iter().map(|q| q.queue()).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(
        queues.tx.iter().map(|q| q.queue()).collect::<Vec<_>>(),
        [0, 1]
    );
    let rss_capable = port.info().expect("info").rss_hash_types != 0;
    assert_eq!(queues.rss_enabled, rss_capable);

    let too_many = PortConfig {
        rx_queues: 4096,
        ..PortConfig::default()
    };
    let err = port
        .configure(&too_many, pool)
        .expect_err("beyond the PMD's maximum");
    assert!(err.to_string().contains("net_null_mq"), "{err}");
    assert!(err.to_string().contains("4096"), "{err}");
    port.remove().expect("remove");
}
