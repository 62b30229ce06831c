//! Runs the IKEv1 responder on UDP 500/4500 of the given local address with the implicit
//! default proposals and a global pre-shared key from the environment (never from the command
//! line, so it does not show up in `ps`).
//!
//! `DYNTUN_PSK=secret cargo run -p control --example ike_udp_responder -- 10.1.1.1`

use std::net::IpAddr;
use std::time::Duration;

use control::ike::driver::UdpDriver;
use control::ike::{IkeEvent, PskTable, Responder, ResponderPolicy, Secret};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let local: IpAddr = std::env::args()
        .nth(1)
        .ok_or("usage: ike_udp_responder LOCAL_ADDRESS")?
        .parse()?;
    let key = std::env::var("DYNTUN_PSK").map_err(|_| "set DYNTUN_PSK")?;
    let psk = PskTable {
        explicit: Vec::new(),
        global: Some(Secret::from(key.as_str())),
    };
    let mut responder = Responder::new(ResponderPolicy::new(vec![local], psk));
    let mut driver = UdpDriver::bind(&[local])?;
    loop {
        driver.poll(&mut responder, Duration::from_millis(50))?;
        while let Some(event) = responder.poll_event() {
            match event {
                IkeEvent::ChildSaUp {
                    child,
                    peer,
                    proxy,
                    inbound,
                    outbound,
                    ..
                } => println!(
                    "child {} up: peer {} remote {} local {} spi in {:08x} out {:08x}",
                    child.0,
                    peer.remote,
                    proxy.remote,
                    proxy.local,
                    inbound[0].spi,
                    outbound[0].spi
                ),
                other => println!("{other:?}"),
            }
        }
    }
}
