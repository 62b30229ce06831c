//! A plain UDP driver around the sans-IO core: sockets on ports 500 and 4500 of each local
//! address, usable without DPDK (tests, small deployments). ESP-in-UDP arriving on 4500 (a
//! non-zero first word) is handed to an optional sink instead of the IKE core.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::numbers::{IKE_PORT, NATT_PORT};
use super::responder::Responder;

/// Receives (local, remote, ESP packet starting at the SPI) for ESP-in-UDP on port 4500.
pub type EspSink = Box<dyn FnMut(SocketAddr, SocketAddr, &[u8]) + Send>;

pub struct UdpDriver {
    sockets: Vec<(UdpSocket, SocketAddr)>,
    esp_sink: Option<EspSink>,
    buf: Vec<u8>,
}

impl UdpDriver {
    /// Binds `addr:500` and `addr:4500` for every address (port 0 for tests picks a free pair
    /// of ports is not supported: IKE peers expect the well-known ports).
    pub fn bind(addresses: &[IpAddr]) -> io::Result<UdpDriver> {
        let mut sockets = Vec::new();
        for addr in addresses {
            for port in [IKE_PORT, NATT_PORT] {
                let socket = UdpSocket::bind(SocketAddr::new(*addr, port))?;
                socket.set_nonblocking(true)?;
                let local = socket.local_addr()?;
                sockets.push((socket, local));
            }
        }
        Ok(UdpDriver {
            sockets,
            esp_sink: None,
            buf: vec![0u8; 65536],
        })
    }

    pub fn set_esp_sink(&mut self, sink: EspSink) {
        self.esp_sink = Some(sink);
    }

    /// Receives what is waiting, runs timers, sends what the core produced; sleeps up to
    /// `max_wait` (bounded by the core's next timeout) when nothing arrived.
    pub fn poll(&mut self, responder: &mut Responder, max_wait: Duration) -> io::Result<()> {
        let mut received = false;
        for i in 0..self.sockets.len() {
            loop {
                let (len, remote) = match self.sockets[i].0.recv_from(&mut self.buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                };
                received = true;
                let local = self.sockets[i].1;
                let data = &self.buf[..len];
                if local.port() == NATT_PORT && data.len() >= 4 && data[..4] != [0, 0, 0, 0] {
                    if let Some(sink) = self.esp_sink.as_mut() {
                        sink(local, remote, data);
                    }
                    continue;
                }
                let ike = if local.port() == NATT_PORT && data.len() > 4 {
                    &data[4..]
                } else {
                    data
                };
                responder.handle_datagram(Instant::now(), local, remote, ike);
            }
        }
        let now = Instant::now();
        if responder.poll_timeout().is_some_and(|t| t <= now) {
            responder.handle_timeout(now);
        }
        while let Some(t) = responder.poll_transmit() {
            if let Some((socket, _)) = self.sockets.iter().find(|(_, local)| *local == t.local) {
                if let Err(e) = socket.send_to(&t.bytes, t.remote) {
                    tracing::warn!(peer = %t.remote, error = %e, "IKE send failed");
                }
            }
        }
        if !received {
            let wait = responder.poll_timeout().map_or(max_wait, |t| {
                t.saturating_duration_since(Instant::now()).min(max_wait)
            });
            std::thread::sleep(wait.min(Duration::from_millis(5)));
        }
        Ok(())
    }
}
