//! The dyntun IKE responder with its UDP driver on a thread that entered a namespace, so a test
//! receives events (with keys) directly, without any key being logged.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use control::ike::driver::UdpDriver;
use control::ike::{IkeEvent, Responder, ResponderPolicy};

use super::netns::Netns;

/// An ESP-in-UDP datagram the driver saw on port 4500: (local, remote, bytes from the SPI on).
pub type EspDatagram = (SocketAddr, SocketAddr, Vec<u8>);

pub struct Gateway {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub events: Arc<Mutex<Vec<IkeEvent>>>,
    pub responder: Arc<Mutex<Responder>>,
    esp: Mutex<mpsc::Receiver<EspDatagram>>,
}

impl Gateway {
    pub fn start(ns: &Netns, local: IpAddr, policy: ResponderPolicy) -> Gateway {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let responder = Arc::new(Mutex::new(Responder::new(policy)));
        let (esp_tx, esp_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let ns_name = ns.name.clone();
        let thread = {
            let (stop, events, responder) = (stop.clone(), events.clone(), responder.clone());
            std::thread::spawn(move || {
                Netns { name: ns_name }.enter_without_owning();
                let mut driver =
                    UdpDriver::bind(&[local]).expect("bind 500/4500 in the gateway namespace");
                driver.set_esp_sink(Box::new(move |l, r, bytes| {
                    let _ = esp_tx.send((l, r, bytes.to_vec()));
                }));
                ready_tx.send(()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let mut r = responder.lock().unwrap();
                    driver
                        .poll(&mut r, Duration::from_millis(5))
                        .expect("driver poll");
                    let mut log = events.lock().unwrap();
                    while let Some(e) = r.poll_event() {
                        log.push(e);
                    }
                    drop(log);
                    drop(r);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("gateway thread ready");
        Gateway {
            stop,
            thread: Some(thread),
            events,
            responder,
            esp: Mutex::new(esp_rx),
        }
    }

    /// The first event (in arrival order, not consumed) that `pred` accepts, waiting up to `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&IkeEvent) -> bool,
    ) -> Option<IkeEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.lock().unwrap().iter().find(|e| pred(e)) {
                return Some(e.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn count(&self, mut pred: impl FnMut(&IkeEvent) -> bool) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .count()
    }

    pub fn drop_count(&self, reason: &str) -> u64 {
        self.responder
            .lock()
            .unwrap()
            .drop_counters()
            .get(reason)
            .copied()
            .unwrap_or(0)
    }

    /// Next ESP datagram from `remote_ip` with `spi`, waiting up to `timeout`.
    pub fn next_esp(&self, spi: u32, timeout: Duration) -> Option<EspDatagram> {
        let deadline = Instant::now() + timeout;
        let rx = self.esp.lock().unwrap();
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let d = rx.recv_timeout(left).ok()?;
            if d.2.len() >= 4 && u32::from_be_bytes([d.2[0], d.2[1], d.2[2], d.2[3]]) == spi {
                return Some(d);
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Netns {
    /// Enters the namespace from a thread that does not own it (no delete on drop).
    fn enter_without_owning(self) {
        self.enter_current_thread();
        std::mem::forget(self);
    }
}
