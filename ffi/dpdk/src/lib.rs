//! A small safe layer over `dpdk-sys` for dyntun: EAL, mempools, ports, bursts, rings, lcores.
//!
//! # How `dyntun run` uses it
//!
//! ```no_run
//! use dpdk::{lcore, ring, Eal, Mbuf, MbufBurst, Mempool, Port, PortConfig, RingSharing};
//!
//! # fn main() -> Result<(), dpdk::DpdkError> {
//! // 1. Once per process, from config-derived arguments (no hugepages on small machines).
//! //    A unique --file-prefix is added when none is given.
//! let eal = Eal::init(["-l", "0-1", "--no-huge", "-m", "512", "--no-pci"])?;
//! let pool = Mempool::create("pic0-pool", 8191, 256, Mempool::DEFAULT_DATA_ROOM)?;
//!
//! // 2. Ports from devargs strings; one rx and one tx queue per worker.
//! let workers = lcore::workers();
//! let port = Port::probe("net_af_packet0,iface=veth0")?;
//! let config = PortConfig { rx_queues: workers.len() as u16, tx_queues: workers.len() as u16, ..PortConfig::default() };
//! let mut queues = port.configure(&config, pool)?;
//! port.start()?;
//!
//! // 3. A punt ring from all workers to the control thread.
//! let (punt_tx, mut punt_rx) = ring::<Mbuf>("punt", 4096, RingSharing { multi_producer: true, multi_consumer: false })?;
//!
//! // 4. One pinned worker per lcore, each owning its queue handles.
//! let mut running = Vec::new();
//! for &lcore_id in &workers {
//!     let mut rx = queues.rx.remove(0);
//!     let mut tx = queues.tx.remove(0);
//!     let mut punt = punt_tx.try_clone().expect("multi-producer ring");
//!     running.push(lcore::launch(lcore_id, move || {
//!         let mut burst = MbufBurst::new();
//!         loop {
//!             rx.rx(&mut burst);
//!             // ... classify; punt IKE with punt.enqueue(mbuf) ...
//!             tx.tx(&mut burst);
//!             burst.clear(); // what tx did not take is dropped (or keep it to retry)
//!             # break 0;
//!         }
//!     })?);
//! }
//! while let Some(_ike) = punt_rx.dequeue() { /* control thread */ }
//! for worker in running { worker.wait(); }
//! port.remove()?;
//! eal.cleanup()?;
//! # Ok(()) }
//! ```
//!
//! Rules the types enforce or document:
//! - [`Mbuf`] is owned: freed exactly once on drop; `into_raw`/`from_raw` move ownership across
//!   C boundaries.
//! - [`MbufBurst`] is a fixed inline array (no allocation); [`TxQueue::tx`] leaves unsent mbufs
//!   in it for the caller to retry or drop, so nothing leaks or is freed twice.
//! - [`RxQueue`]/[`TxQueue`] exist once per queue and are not `Clone`: one thread per queue.
//! - Mempools live until EAL cleanup (mbufs point into them).
//! - Every failure is a [`DpdkError`] naming the operation, the device and DPDK's reason.
//!
//! Ports can come from `--vdev=...` EAL arguments (checked at `Eal::init`: a vdev that did not
//! attach is an error there) or from [`Port::probe`] after start-up, which returns DPDK's reason
//! for a failure directly; `Port::probe` on a device that already exists just looks it up.
//!
//! Test binaries share one EAL per process through [`Eal::init_global`].
//!
//! PMDs (net_af_packet, net_ring, net_null, net_tap, net_pcap, net_memif, ...) are found by EAL
//! itself: Debian's shared-library build loads every driver from its plugin directory
//! (`/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0`) at `rte_eal_init`, so nothing needs `-d`.

mod burst;
mod eal;
mod error;
pub mod lcore;
mod mbuf;
mod mempool;
mod port;
mod ring;

pub use burst::{Drain, MbufBurst, BURST_SIZE};
pub use eal::Eal;
pub use error::{strerror, DpdkError, EalError, Result};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{
    device_name, LinkStatus, Port, PortConfig, PortInfo, PortQueues, PortStats, RxQueue, TxQueue,
};
pub use ring::{ring, Consumer, Producer, RingItem, RingSharing};

pub use dpdk_sys as sys;
