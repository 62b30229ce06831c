//! An AH+ESP bundle from Quick Mode becomes one outbound transform and one inbound lookup on
//! the owning worker, with the real ESP/AH engine behind the manager, and interoperates with
//! scapy's `SecurityAssociation` (the independent implementation) both ways.

#[path = "tunnels_support.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use control::tunnels::{ChildSaUp, SaBuilder, SaContext, SaDown, TunnelManager, WorkerQueue};
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa};
use dataplane::pipeline::{GatewaySas, TunnelInbound, TunnelOutbound};
use dataplane::sa::{
    Cipher, Direction, Encapsulation, Integrity, IpsecProtocol, PeerEndpoint, ProxyPair, SaSpec,
};
use dataplane::tables::{InboundLookup, WorkerTables};
use serde_json::{json, Value};
use support::{a, p, sa, single_pic, LOCAL_GATEWAY, PROFILE};

const PEER: &str = "10.2.2.2";
const ESP_KEY: [u8; 16] = [0x3c; 16];
const ESP_AUTH_KEY: [u8; 20] = [0x5d; 20];
const AH_KEY: [u8; 20] = [0x7e; 20];

/// The gateway's own way of building SA state (as `src/daemon/builder.rs` does), bundles whole.
struct EngineBuilder;

impl SaBuilder<GatewaySas> for EngineBuilder {
    fn inbound(&self, spec: &SaSpec, context: &SaContext) -> Result<TunnelInbound, String> {
        Ok(TunnelInbound {
            sa: InboundSa::new(spec, 0, Backend::Fastest).map_err(|e| e.to_string())?,
            inside_vrf: context.inside_vrf,
            proxy: context.proxy,
        })
    }

    fn outbound(&self, spec: &SaSpec, context: &SaContext) -> Result<TunnelOutbound, String> {
        Ok(TunnelOutbound {
            sa: OutboundSa::new(spec, 0, Backend::Fastest).map_err(|e| e.to_string())?,
            outer_vrf: context.outer_vrf,
        })
    }

    fn inbound_bundle(
        &self,
        esp: &SaSpec,
        ah: &SaSpec,
        context: &SaContext,
    ) -> Option<Result<TunnelInbound, String>> {
        Some(
            InboundSa::new_bundle(esp, ah, 0, Backend::Fastest)
                .map_err(|e| e.to_string())
                .map(|sa| TunnelInbound {
                    sa,
                    inside_vrf: context.inside_vrf,
                    proxy: context.proxy,
                }),
        )
    }

    fn outbound_bundle(
        &self,
        esp: &SaSpec,
        ah: &SaSpec,
        context: &SaContext,
    ) -> Option<Result<TunnelOutbound, String>> {
        Some(
            OutboundSa::new_bundle(esp, ah, 0, Backend::Fastest)
                .map_err(|e| e.to_string())
                .map(|sa| TunnelOutbound {
                    sa,
                    outer_vrf: context.outer_vrf,
                }),
        )
    }
}

fn esp_spec(spi: u32, direction: Direction) -> SaSpec {
    let mut spec = sa(spi, direction);
    spec.encapsulation = Encapsulation::None;
    spec.cipher = Cipher::AesCbc128;
    spec.integrity = Integrity::HmacSha1_96;
    spec.keys.encryption = ESP_KEY.to_vec();
    spec.keys.integrity = ESP_AUTH_KEY.to_vec();
    spec
}

fn ah_spec(spi: u32, direction: Direction) -> SaSpec {
    let mut spec = esp_spec(spi, direction);
    spec.protocol = IpsecProtocol::Ah;
    spec.cipher = Cipher::Null;
    spec.keys.encryption = Vec::new();
    spec.keys.integrity = AH_KEY.to_vec();
    spec
}

/// An IPv4 UDP packet from the local LAN to the peer's LAN.
fn inner_packet(payload_len: usize) -> Vec<u8> {
    let total = 20 + 8 + payload_len;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[172, 16, 1, 5]);
    p[16..20].copy_from_slice(&[172, 16, 2, 5]);
    let sum = dataplane::wire::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5000u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = (i * 13 + 1) as u8;
    }
    p
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex from the oracle"))
        .collect()
}

/// One bundle as dataplane's scapy oracle script describes it (`local` is this gateway).
fn oracle_case(
    name: &str,
    esp_spi: u32,
    ah_spi: u32,
    inner: &[Vec<u8>],
    sent: &[Vec<u8>],
) -> Value {
    json!({
        "name": name, "mode": "bundle",
        "local": LOCAL_GATEWAY, "remote": PEER,
        "udp": false, "local_port": 0, "remote_port": 0, "esn": false,
        "spi": esp_spi, "cipher": "aes-128-cbc", "integrity": "hmac-sha1-96",
        "enc_key": hex(&ESP_KEY), "auth_key": hex(&ESP_AUTH_KEY),
        "ah_spi": ah_spi, "ah_integrity": "hmac-sha1-96", "ah_key": hex(&AH_KEY),
        "inner_packets": inner.iter().map(|p| hex(p)).collect::<Vec<_>>(),
        "dyntun_packets": sent.iter().map(|p| hex(p)).collect::<Vec<_>>(),
    })
}

/// Removes the exchange files even when an assertion fails.
struct TempFiles([PathBuf; 2]);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn run_oracle(cases: &[Value]) -> Vec<Value> {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let files = TempFiles([
        dir.join(format!("dyntun-bundle-oracle-in-{pid}.json")),
        dir.join(format!("dyntun-bundle-oracle-out-{pid}.json")),
    ]);
    std::fs::write(&files.0[0], serde_json::to_vec(cases).expect("json")).expect("write");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dataplane/tests/oracle/esp_oracle.py");
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&files.0[0])
        .arg(&files.0[1])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value =
        serde_json::from_slice(&std::fs::read(&files.0[1]).expect("oracle output")).expect("json");
    parsed.as_array().expect("a list").clone()
}

struct Gateway {
    manager: TunnelManager<GatewaySas, EngineBuilder>,
    queues: Vec<WorkerQueue<GatewaySas>>,
    worker: WorkerTables<GatewaySas>,
}

impl Gateway {
    fn pump(&mut self) {
        self.manager.flush();
        for queue in &mut self.queues {
            self.worker
                .apply_pending(&mut queue.updates, usize::MAX, |kind, error| {
                    panic!("worker rejected {kind}: {error}")
                });
        }
    }
}

#[test]
fn an_ah_esp_bundle_is_one_transform_out_and_one_lookup_in_and_scapy_agrees() {
    let (manager, queues) =
        TunnelManager::new(single_pic(None, 2), EngineBuilder, 64).expect("valid topology");
    let worker = WorkerTables::new(queues[0].worker);
    let mut gateway = Gateway {
        manager,
        queues,
        worker,
    };
    let in_esp = gateway
        .manager
        .allocate_inbound_spi(PROFILE, a(PEER))
        .unwrap();
    let in_ah = gateway
        .manager
        .allocate_inbound_spi(PROFILE, a(PEER))
        .unwrap();
    let (out_esp, out_ah) = (0x6000_0001, 0x6000_0002);
    let up = ChildSaUp {
        access_profile: PROFILE.to_string(),
        peer: PeerEndpoint {
            local: SocketAddr::new(a(LOCAL_GATEWAY), 500),
            remote: SocketAddr::new(a(PEER), 500),
        },
        proxy: ProxyPair {
            local: p("172.16.1.0/24"),
            remote: p("172.16.2.0/24"),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
        // Listed as IKE reports them (AH first here), which must not matter.
        inbound: vec![
            ah_spec(in_ah, Direction::Inbound),
            esp_spec(in_esp, Direction::Inbound),
        ],
        outbound: vec![
            esp_spec(out_esp, Direction::Outbound),
            ah_spec(out_ah, Direction::Outbound),
        ],
    };
    let tunnel = gateway.manager.child_sa_up(up).expect("bundle accepted");
    gateway.pump();

    // One inbound state, filed under the AH SPI that arriving packets carry outermost.
    assert_eq!(gateway.worker.sas.inbound_count(), 1);
    assert!(matches!(
        gateway.worker.sas.inbound(in_esp),
        InboundLookup::Unknown
    ));
    // One outbound transform, named by its outer (AH) SPI.
    let bundle = gateway
        .worker
        .sas
        .outbound(tunnel)
        .expect("outbound bundle");
    assert_eq!(bundle.len(), 1);
    assert_eq!(bundle[0].sa.spi(), out_ah);

    let inner: Vec<Vec<u8>> = [40usize, 333, 1200].map(inner_packet).to_vec();
    let sent: Vec<Vec<u8>> = inner
        .iter()
        .map(|packet| {
            let mut buf = HeapBuf::from_slice(packet);
            let (verdict, _) = bundle[0].sa.encapsulate(&mut buf, 0);
            verdict.expect("sealed");
            assert_eq!(buf.data()[9], 51, "AH is the outer protocol");
            buf.data().to_vec()
        })
        .collect();

    let results = run_oracle(&[
        oracle_case("outbound", out_esp, out_ah, &inner, &sent),
        oracle_case("inbound", in_esp, in_ah, &inner, &[]),
    ]);
    for (i, verdict) in results[0]["decrypted"]
        .as_array()
        .expect("verdicts")
        .iter()
        .enumerate()
    {
        assert_eq!(verdict, "ok", "scapy opening dyntun's bundle packet #{i}");
    }
    let from_peer = results[1]["scapy_packets"].as_array().expect("packets");
    assert_eq!(from_peer.len(), inner.len());
    for (i, wire) in from_peer.iter().enumerate() {
        let mut buf = HeapBuf::from_slice(&unhex(wire.as_str().expect("hex")));
        // What the pipeline does: the SPI at the AH header's offset 4, then one lookup.
        let data = buf.data();
        assert_eq!(data[9], 51);
        let spi = u32::from_be_bytes([data[24], data[25], data[26], data[27]]);
        assert_eq!(spi, in_ah);
        let InboundLookup::Owned(entry) = gateway.worker.sas.inbound(spi) else {
            panic!("no inbound state for the AH SPI");
        };
        let (verdict, _) = entry.sa.sa.decapsulate(&mut buf, 0);
        verdict.expect("AH verified and ESP opened");
        assert_eq!(buf.data(), &inner[i][..], "packet #{i} from scapy");
    }
    let InboundLookup::Owned(entry) = gateway.worker.sas.inbound(in_ah) else {
        panic!("inbound state gone");
    };
    assert_eq!(entry.sa.sa.counters().snapshot().packets, 3);

    // A delete naming the ESP SPI (the one the peer may pick) still takes everything down.
    assert_eq!(
        gateway.manager.child_sa_down(in_esp),
        SaDown::TunnelRemoved(tunnel)
    );
    gateway.pump();
    assert_eq!(gateway.worker.sas.inbound_count(), 0);
    assert!(gateway.worker.sas.outbound(tunnel).is_none());
}

#[test]
fn a_bundle_with_bad_ah_keys_is_refused_whole() {
    let (mut manager, _queues) =
        TunnelManager::new(single_pic(None, 2), EngineBuilder, 64).expect("valid topology");
    let in_esp = manager.allocate_inbound_spi(PROFILE, a(PEER)).unwrap();
    let in_ah = manager.allocate_inbound_spi(PROFILE, a(PEER)).unwrap();
    let mut broken_ah = ah_spec(0x6000_0004, Direction::Outbound);
    broken_ah.keys.integrity.truncate(3);
    let up = ChildSaUp {
        access_profile: PROFILE.to_string(),
        peer: PeerEndpoint {
            local: SocketAddr::new(a(LOCAL_GATEWAY), 500),
            remote: SocketAddr::new(a(PEER), 500),
        },
        proxy: ProxyPair {
            local: p("172.16.1.0/24"),
            remote: p("172.16.2.0/24"),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
        inbound: vec![
            esp_spec(in_esp, Direction::Inbound),
            ah_spec(in_ah, Direction::Inbound),
        ],
        outbound: vec![esp_spec(0x6000_0003, Direction::Outbound), broken_ah],
    };
    assert!(manager.child_sa_up(up).is_err());
    assert!(manager.view().tunnels.is_empty());
}
