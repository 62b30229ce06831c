//! Ethernet ports: finding or hot-plugging them, configuring queues, and the per-queue handles
//! that workers poll.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;

use dpdk_sys as sys;

use crate::burst::MbufBurst;
use crate::error::{check, DpdkError, Result};
use crate::mempool::Mempool;

/// An ethdev port id. Cheap to copy; the data path goes through [`RxQueue`] / [`TxQueue`],
/// which exist once per queue so that no two threads can poll the same queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Port {
    id: u16,
}

/// How to set a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Spread received packets over the rx queues by IP/TCP/UDP hash, if the PMD can.
    pub rss: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            rss: true,
        }
    }
}

/// The queue handles a configured port hands out, one per queue, plus whether RSS is on.
#[derive(Debug)]
pub struct PortQueues {
    pub rx: Vec<RxQueue>,
    pub tx: Vec<TxQueue>,
    pub rss_enabled: bool,
}

/// What the PMD says about a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rss_hash_types: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the hardware because no rx descriptor was free.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// Dropped because the mempool had no mbuf to receive into.
    pub rx_no_mbuf: u64,
}

impl Port {
    /// The port a device name or devargs string (`"net_af_packet0,iface=veth0"`) refers to.
    pub fn by_name(name_or_devargs: &str) -> Result<Port> {
        let name = device_name(name_or_devargs);
        let c_name = c_string(name, "find port")?;
        let mut id = 0u16;
        // SAFETY: c_name is a valid C string and id a valid out-pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        check(ret, "find port", || name.to_owned())?;
        Ok(Port { id })
    }

    /// Hot-plugs a virtual device from its devargs (e.g. `"net_af_packet0,iface=veth0"`,
    /// `"net_null0"`) and returns its port; a device already present (e.g. from `--vdev`) is
    /// simply looked up. A missing PMD or bad arguments give an error naming the device and
    /// DPDK's reason.
    pub fn probe(devargs: &str) -> Result<Port> {
        if let Ok(port) = Port::by_name(devargs) {
            return Ok(port);
        }
        let c_devargs = c_string(devargs, "probe device")?;
        // SAFETY: c_devargs is a valid C string.
        let ret = unsafe { sys::rte_dev_probe(c_devargs.as_ptr()) };
        if ret == -1 {
            // Several PMDs fail their probe with a bare -1, which is not an errno (it would read
            // as EPERM); their own log line above carries the detail.
            return Err(DpdkError::local(
                "probe device",
                devargs,
                ENODEV,
                "the driver could not attach it (its log line says why)",
            ));
        }
        check(ret, "probe device", || devargs.to_owned())?;
        Port::by_name(devargs)
    }

    /// Two ports joined back to back by a pair of DPDK rings: what one transmits, the other
    /// receives. For tests and for in-process links between emulated devices. The ports are
    /// named `net_ring_<name>`.
    pub fn ring_pair(name_a: &str, name_b: &str, ring_size: u32) -> Result<(Port, Port)> {
        let a_to_b = raw_ring(&format!("{name_a}>b"), ring_size)?;
        let b_to_a = raw_ring(&format!("{name_b}>a"), ring_size)?;
        let a = ring_port(name_a, b_to_a, a_to_b)?;
        let b = ring_port(name_b, a_to_b, b_to_a)?;
        Ok((a, b))
    }

    /// Every port DPDK currently knows.
    pub fn all() -> Vec<Port> {
        (0..sys::RTE_MAX_ETHPORTS as u16)
            // SAFETY: any id may be asked about.
            .filter(|&id| unsafe { sys::rte_eth_dev_is_valid_port(id) } == 1)
            .map(|id| Port { id })
            .collect()
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> String {
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf is RTE_ETH_NAME_MAX_LEN bytes, as the API requires.
        let ret = unsafe { sys::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr()) };
        if ret < 0 {
            return format!("port {}", self.id);
        }
        // SAFETY: DPDK wrote a NUL-terminated name.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    fn subject(&self) -> String {
        format!("port {} ({})", self.id, self.name())
    }

    fn raw_info(&self) -> Result<sys::rte_eth_dev_info> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-pointer.
        let ret = unsafe { sys::rte_eth_dev_info_get(self.id, &mut info) };
        check(ret, "query", || self.subject())?;
        Ok(info)
    }

    pub fn info(&self) -> Result<PortInfo> {
        let info = self.raw_info()?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: the PMD's static, NUL-terminated driver name.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_hash_types: info.flow_type_rss_offloads,
        })
    }

    /// Configures queues (receiving into `pool`) and hands out one handle per queue. RSS is
    /// enabled when asked for, more than one rx queue exists and the PMD supports it.
    pub fn configure(&self, config: &PortConfig, pool: Mempool) -> Result<PortQueues> {
        let info = self.raw_info()?;
        if config.rx_queues > info.max_rx_queues || config.tx_queues > info.max_tx_queues {
            return Err(DpdkError::local(
                "configure",
                self.subject(),
                22,
                &format!(
                    "asked for {} rx / {} tx queues, the PMD allows {} / {}",
                    config.rx_queues, config.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let mut conf = sys::rte_eth_conf::default();
        // SAFETY: a pure function returning a constant.
        let wanted_hash = unsafe { sys::dyntun_eth_rss_ip_tcp_udp() };
        let rss_hash = wanted_hash & info.flow_type_rss_offloads;
        let rss_enabled = config.rss && config.rx_queues > 1 && rss_hash != 0;
        if rss_enabled {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hash;
        }
        // SAFETY: conf is fully initialised.
        let ret = unsafe {
            sys::rte_eth_dev_configure(self.id, config.rx_queues, config.tx_queues, &conf)
        };
        check(ret, "configure", || self.subject())?;

        let mut rx_desc = config.rx_descriptors;
        let mut tx_desc = config.tx_descriptors;
        // SAFETY: valid out-pointers.
        let ret =
            unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rx_desc, &mut tx_desc) };
        check(ret, "adjust descriptors of", || self.subject())?;

        // SAFETY: plain query.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id) } as u32;
        let mut queues = PortQueues {
            rx: Vec::with_capacity(config.rx_queues as usize),
            tx: Vec::with_capacity(config.tx_queues as usize),
            rss_enabled,
        };
        for queue in 0..config.rx_queues {
            // SAFETY: a null rxconf means the PMD's defaults; the pool outlives the port.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.id,
                    queue,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_raw(),
                )
            };
            check(ret, "set up rx queue of", || {
                format!("{} queue {queue}", self.subject())
            })?;
            queues.rx.push(RxQueue {
                port: self.id,
                queue,
            });
        }
        for queue in 0..config.tx_queues {
            // SAFETY: a null txconf means the PMD's defaults.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(self.id, queue, tx_desc, socket, std::ptr::null())
            };
            check(ret, "set up tx queue of", || {
                format!("{} queue {queue}", self.subject())
            })?;
            queues.tx.push(TxQueue {
                port: self.id,
                queue,
            });
        }
        Ok(queues)
    }

    pub fn start(&self) -> Result<()> {
        // SAFETY: plain call on a port id.
        let ret = unsafe { sys::rte_eth_dev_start(self.id) };
        check(ret, "start", || self.subject()).map(|_| ())
    }

    pub fn stop(&self) -> Result<()> {
        // SAFETY: plain call on a port id.
        let ret = unsafe { sys::rte_eth_dev_stop(self.id) };
        check(ret, "stop", || self.subject()).map(|_| ())
    }

    /// Stops and closes the port and detaches its device, so a hot-plugged vdev (and, for
    /// net_af_packet, its kernel socket) is gone. Queue handles of the port must not be used
    /// afterwards; they hold only ids, so misuse fails in DPDK's checks, not in memory.
    pub fn remove(self) -> Result<()> {
        let info = self.raw_info()?;
        let subject = self.subject();
        // SAFETY: plain calls on a port id; the device pointer came from DPDK just now.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            check(sys::rte_eth_dev_close(self.id), "close", || subject.clone())?;
            if !info.device.is_null() {
                check(sys::rte_dev_remove(info.device), "remove device of", || {
                    subject.clone()
                })?;
            }
        }
        Ok(())
    }

    pub fn mac_address(&self) -> Result<[u8; 6]> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid out-pointer.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.id, &mut addr) };
        check(ret, "read MAC address of", || self.subject())?;
        Ok(addr.addr_bytes)
    }

    pub fn link(&self) -> Result<LinkStatus> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid out-pointer.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) };
        check(ret, "read link of", || self.subject())?;
        Ok(LinkStatus {
            up: link.link_status() as u32 == sys::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() as u32 == sys::RTE_ETH_LINK_FULL_DUPLEX,
        })
    }

    pub fn stats(&self) -> Result<PortStats> {
        let mut stats = sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer.
        let ret = unsafe { sys::rte_eth_stats_get(self.id, &mut stats) };
        check(ret, "read stats of", || self.subject())?;
        Ok(PortStats {
            rx_packets: stats.ipackets,
            tx_packets: stats.opackets,
            rx_bytes: stats.ibytes,
            tx_bytes: stats.obytes,
            rx_missed: stats.imissed,
            rx_errors: stats.ierrors,
            tx_errors: stats.oerrors,
            rx_no_mbuf: stats.rx_nombuf,
        })
    }

    pub fn set_promiscuous(&self, on: bool) -> Result<()> {
        // SAFETY: plain calls on a port id.
        let ret = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        check(ret, "set promiscuous mode of", || self.subject()).map(|_| ())
    }
}

/// The receive side of one queue of one port. Not `Clone`: DPDK queues are single-threaded.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
}

impl RxQueue {
    /// Receives into the burst's free slots; returns how many mbufs arrived.
    #[inline]
    pub fn rx(&mut self, burst: &mut MbufBurst) -> usize {
        let room = burst.spare_capacity() as u16;
        if room == 0 {
            return 0;
        }
        // SAFETY: the spare slots take `room` pointers; each one the PMD writes is an mbuf it
        // hands to us.
        unsafe {
            let got =
                sys::dyntun_eth_rx_burst(self.port, self.queue, burst.spare_slots_ptr(), room);
            burst.assume_filled(got as usize);
            got as usize
        }
    }

    pub fn port(&self) -> Port {
        Port { id: self.port }
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }
}

/// The transmit side of one queue of one port. Not `Clone`: DPDK queues are single-threaded.
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
}

impl TxQueue {
    /// Transmits from the front of the burst; returns how many were accepted. Mbufs the PMD did
    /// not take stay in the burst, in order, for the caller to retry or drop.
    #[inline]
    pub fn tx(&mut self, burst: &mut MbufBurst) -> usize {
        let len = burst.len() as u16;
        if len == 0 {
            return 0;
        }
        // SAFETY: the first `len` slots are owned mbufs; the PMD takes ownership of the first
        // `sent`, which the burst then forgets.
        unsafe {
            let sent = sys::dyntun_eth_tx_burst(self.port, self.queue, burst.slots_ptr(), len);
            burst.forget_front(sent as usize);
            sent as usize
        }
    }

    pub fn port(&self) -> Port {
        Port { id: self.port }
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }
}

const ENODEV: i32 = 19;

/// The device name a devargs string starts with (`"net_ring0,nodeaction=..."` → `"net_ring0"`).
pub fn device_name(devargs: &str) -> &str {
    devargs.split(',').next().unwrap_or(devargs).trim()
}

fn c_string(text: &str, operation: &'static str) -> Result<CString> {
    CString::new(text).map_err(|_| DpdkError::local(operation, text, 22, "contains a NUL byte"))
}

fn raw_ring(name: &str, size: u32) -> Result<*mut sys::rte_ring> {
    let c_name = c_string(name, "create ring")?;
    // SAFETY: valid C string; the ring lives as long as the ports built on it.
    let ring = unsafe {
        sys::rte_ring_create(
            c_name.as_ptr(),
            size,
            sys::SOCKET_ID_ANY,
            sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ | sys::RING_F_EXACT_SZ,
        )
    };
    if ring.is_null() {
        return Err(DpdkError::from_rte_errno("create ring", name));
    }
    Ok(ring)
}

fn ring_port(name: &str, rx: *mut sys::rte_ring, tx: *mut sys::rte_ring) -> Result<Port> {
    let c_name = c_string(name, "create ring port")?;
    // SAFETY: one rx and one tx ring, both valid for the life of the process.
    let ret = unsafe {
        sys::rte_eth_from_rings(c_name.as_ptr(), &rx, 1, &tx, 1, sys::SOCKET_ID_ANY as u32)
    };
    if ret < 0 {
        return Err(DpdkError::from_rte_errno("create ring port", name));
    }
    Ok(Port { id: ret as u16 })
}
