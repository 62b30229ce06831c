//! ESP encrypt/decrypt cost on one core, in memory (bursts of 32 `HeapBuf`s, no I/O), per suite
//! and packet size, next to the raw seal/open of the same engine measured in the same run, the
//! cost of a 100,000-SA table hit at random, and `openssl speed` as the outside reference.
//!
//! `cargo run --release -p dyntun-bench --bin esp` prints a markdown table and writes
//! `bench/results/esp.json`.

use dataplane::crypto::EngineBox;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::{build_esp_transform, Backend};
use dataplane::esp::{InboundSa, OutboundSa, Verdict};
use dataplane::sa::{
    Cipher, DfMode, Direction, Encapsulation, Integrity, IpsecProtocol, Lifetime, SaKeys, SaSpec,
};
use dataplane::wire::ipv4;
use dyntun_bench::memory_floor::{staged_random_lines_ns, Pages, Stage};
use serde_json::json;

const BURST: usize = 32;
const MIN_TIME: Duration = Duration::from_millis(60);
/// Every figure is the minimum over this many rounds, interleaved with the figures it is compared
/// with, because the machine is shared and a minimum is what interference cannot inflate.
const ROUNDS: usize = 5;
/// Sizes are inner IP packet lengths; IMIX is 7:4:1 of 64, 576 and 1420 bytes.
const SIZES: [Size; 5] = [
    Size::Fixed(64),
    Size::Fixed(128),
    Size::Fixed(512),
    Size::Fixed(1420),
    Size::Imix,
];
const SUITES: [(Cipher, Integrity); 4] = [
    (Cipher::AesGcm128, Integrity::None),
    (Cipher::AesGcm256, Integrity::None),
    (Cipher::AesCbc128, Integrity::HmacSha1_96),
    (Cipher::TripleDesCbc, Integrity::HmacMd5_96),
];

#[derive(Clone, Copy)]
enum Size {
    Fixed(usize),
    Imix,
}

impl Size {
    fn label(self) -> String {
        match self {
            Size::Fixed(n) => n.to_string(),
            Size::Imix => "IMIX".into(),
        }
    }
    /// Packet lengths of one burst.
    fn lengths(self) -> Vec<usize> {
        match self {
            Size::Fixed(n) => vec![n; BURST],
            Size::Imix => (0..BURST)
                .map(|i| match i % 12 {
                    0..=6 => 64,
                    7..=10 => 576,
                    _ => 1420,
                })
                .collect(),
        }
    }
}

/// Deterministic filler so runs are comparable.
fn filler(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn spec(cipher: Cipher, integrity: Integrity, spi: u32, direction: Direction) -> SaSpec {
    let key = filler(cipher.key_len() + integrity.key_len(), u64::from(spi));
    let (a, b) = (
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
    );
    let (local, remote) = if direction == Direction::Outbound {
        (a, b)
    } else {
        (b, a)
    };
    SaSpec {
        spi,
        direction,
        protocol: IpsecProtocol::Esp,
        cipher,
        integrity,
        keys: SaKeys {
            encryption: key[..cipher.key_len()].to_vec(),
            integrity: key[cipher.key_len()..].to_vec(),
        },
        local,
        remote,
        encapsulation: Encapsulation::None,
        replay_window: 64,
        extended_sequence_numbers: false,
        lifetime: Lifetime::default(),
        df_mode: DfMode::Copy,
        tunnel_mtu: None,
    }
}

fn inner_packet(len: usize) -> Vec<u8> {
    let mut p = filler(len, len as u64);
    ipv4::write_header(
        &mut p,
        0,
        len as u16,
        1,
        0,
        63,
        17,
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 2, 0, 1),
    );
    p
}

/// Runs `f` (one burst of `packets` packets) until `MIN_TIME` has passed; ns per packet.
fn time_per_packet(packets: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < MIN_TIME || rounds < 4 {
        f();
        rounds += 1;
    }
    start.elapsed().as_nanos() as f64 / (rounds as f64 * packets as f64)
}

/// Refills a buffer with an inner packet. Only the IP header is rewritten: the ciphertext left
/// in the payload bytes is as good a payload as any, and a full copy would be counted as ESP cost.
fn refill(buf: &mut HeapBuf, header: &[u8], len: usize) {
    buf.reset(HeapBuf::DEFAULT_HEADROOM);
    buf.append(len).expect("capacity");
    buf.data_mut()[..ipv4::MIN_HEADER_LEN].copy_from_slice(&header[..ipv4::MIN_HEADER_LEN]);
}

struct Row {
    suite: String,
    size: String,
    avg_len: f64,
    encap_ns: f64,
    decap_ns: f64,
    copy_ns: f64,
    raw_seal_ns: f64,
    raw_open_ns: f64,
}

fn measure(cipher: Cipher, integrity: Integrity, size: Size) -> Row {
    let lengths = size.lengths();
    let inners: Vec<Vec<u8>> = lengths.iter().map(|&l| inner_packet(l)).collect();
    let mut bufs: Vec<HeapBuf> = inners.iter().map(|p| HeapBuf::from_slice(p)).collect();
    let mut verdicts: Vec<Verdict> = vec![Ok(()); BURST];
    let out_spec = spec(cipher, integrity, 0x100, Direction::Outbound);
    let in_spec = spec(cipher, integrity, 0x100, Direction::Inbound);
    let mut out = OutboundSa::new(&out_spec, 0, Backend::Fastest).expect("sa");

    // The engine alone, on ESP-shaped buffers: seal in place; open needs sealed input, so its
    // copy is measured and subtracted, as for decapsulation.
    let engine: EngineBox = build_esp_transform(
        cipher,
        integrity,
        &out_spec.keys.encryption,
        &out_spec.keys.integrity,
        Backend::Fastest,
    )
    .expect("engine");
    let shaped: Vec<Vec<u8>> = lengths
        .iter()
        .map(|&l| {
            let body = (l + 2).div_ceil(engine.pad_align()) * engine.pad_align();
            let mut v = vec![0u8; 8 + engine.iv_len() + body + engine.icv_len()];
            v[..4].copy_from_slice(&0x100u32.to_be_bytes());
            v[7] = 1;
            v
        })
        .collect();
    let mut work = shaped.clone();
    let sealed_raw: Vec<Vec<u8>> = shaped
        .iter()
        .map(|s| {
            let mut v = s.clone();
            engine.seal(&mut v, None);
            v
        })
        .collect();

    // Decrypt: a pass over freshly sealed packets with a fresh SA (so the replay window stays on).
    const PASS: usize = 2048 / BURST * BURST;
    let mut sealer = OutboundSa::new(&out_spec, 0, Backend::Fastest).expect("sa");
    let sealed: Vec<Vec<u8>> = (0..PASS)
        .map(|i| {
            let mut b = HeapBuf::from_slice(&inners[i % BURST]);
            assert!(sealer.encapsulate(&mut b, 0).0.is_ok());
            b.data().to_vec()
        })
        .collect();
    let load = |bufs: &mut [HeapBuf], chunk: &[Vec<u8>]| {
        for (b, s) in bufs.iter_mut().zip(chunk) {
            b.reset(64);
            b.append(s.len()).expect("capacity").copy_from_slice(s);
        }
    };

    let mut best = [f64::MAX; 6];
    for _ in 0..ROUNDS {
        let figures = [
            time_per_packet(BURST, || {
                for (b, (p, &l)) in bufs.iter_mut().zip(inners.iter().zip(&lengths)) {
                    refill(b, p, l);
                }
                out.encapsulate_burst(&mut bufs, &mut verdicts, 0);
                black_box(&verdicts);
            }),
            time_per_packet(BURST, || {
                for w in work.iter_mut() {
                    engine.seal(w, None);
                }
                black_box(&work);
            }),
            time_per_packet(PASS, || {
                for chunk in sealed.chunks(BURST) {
                    load(&mut bufs, chunk);
                    black_box(&bufs);
                }
            }),
            time_per_packet(PASS, || {
                let mut inb = InboundSa::new(&in_spec, 0, Backend::Fastest).expect("sa");
                for chunk in sealed.chunks(BURST) {
                    load(&mut bufs, chunk);
                    inb.decapsulate_burst(&mut bufs, &mut verdicts, 0);
                    black_box(&verdicts);
                }
            }),
            time_per_packet(BURST, || {
                for (w, s) in work.iter_mut().zip(&sealed_raw) {
                    w.copy_from_slice(s);
                }
                black_box(&work);
            }),
            time_per_packet(BURST, || {
                for (w, s) in work.iter_mut().zip(&sealed_raw) {
                    w.copy_from_slice(s);
                    let _ = black_box(engine.open(w, None));
                }
            }),
        ];
        for (b, f) in best.iter_mut().zip(figures) {
            *b = b.min(f);
        }
    }
    assert!(verdicts.iter().all(Result::is_ok));
    let [encap_ns, raw_seal_ns, copy_ns, decap_total_ns, raw_copy_ns, raw_open_total] = best;
    let avg_len = lengths.iter().sum::<usize>() as f64 / lengths.len() as f64;
    Row {
        suite: format!("{}+{}", cipher.junos_name(), integrity.junos_name()),
        size: size.label(),
        avg_len,
        encap_ns,
        decap_ns: decap_total_ns - copy_ns,
        copy_ns,
        raw_seal_ns,
        raw_open_ns: raw_open_total - raw_copy_ns,
    }
}

/// An SA on its own cache lines, as in the worker's outbound table (`SaTable`'s slots).
#[repr(align(64))]
struct Slot(OutboundSa);

/// One SA versus 100,000 SAs picked at random per packet, same single-packet call pattern;
/// last, the memory floor of the lines those SAs occupy (`memory_floor`), measured here too.
fn sa_table(len: usize, backend: Backend) -> (f64, f64, f64, f64) {
    const SAS: usize = 100_000;
    let (cipher, integrity) = (Cipher::AesGcm128, Integrity::None);
    // As the worker keeps them: the SAs in a huge-page table of line-aligned slots, their
    // engines and counters in huge-page blocks (`huge_slab`).
    let mut table: Vec<Slot> = dataplane::tables::huge_pages::huge_vec(SAS);
    table.extend((0..SAS).map(|i| {
        Slot(
            OutboundSa::new(
                &spec(cipher, integrity, 0x1000 + i as u32, Direction::Outbound),
                0,
                backend,
            )
            .expect("sa"),
        )
    }));
    eprintln!(
        "per-SA footprint: {} bytes (OutboundSa itself {}, its slot {})",
        table[0].0.footprint_bytes(),
        std::mem::size_of::<OutboundSa>(),
        std::mem::size_of::<Slot>()
    );
    let inner = inner_packet(len);
    let mut buf = HeapBuf::from_slice(&inner);
    // Enough picks that the SAs touched in one pass do not fit the last-level cache.
    let mut picks = vec![0usize; 1 << 16];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for p in picks.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *p = (x % SAS as u64) as usize;
    }
    // As the pipeline would after its SA lookup: SA lines 8 packets ahead, what they point to 4 ahead.
    const AHEAD: usize = 8;
    let mut best = [f64::MAX; 3];
    for _ in 0..ROUNDS {
        let figures = [
            time_per_packet(picks.len(), || {
                for _ in &picks {
                    refill(&mut buf, &inner, len);
                    let _ = black_box(table[7].0.encapsulate(&mut buf, 0));
                }
            }),
            time_per_packet(picks.len(), || {
                for &i in &picks {
                    refill(&mut buf, &inner, len);
                    let _ = black_box(table[i].0.encapsulate(&mut buf, 0));
                }
            }),
            time_per_packet(picks.len(), || {
                for (k, &i) in picks.iter().enumerate() {
                    table[picks[(k + AHEAD) % picks.len()]].0.prefetch_sa();
                    table[picks[(k + AHEAD / 2) % picks.len()]]
                        .0
                        .prefetch_context(len);
                    refill(&mut buf, &inner, len);
                    let _ = black_box(table[i].0.encapsulate(&mut buf, 0));
                }
            }),
        ];
        for (b, f) in best.iter_mut().zip(figures) {
            *b = b.min(f);
        }
    }
    let [one, random, prefetched] = best;
    // The SA's own lines, then what it points to (engine and counters) — the two stages the
    // prefetch pipeline above has.
    let sa_bytes = std::mem::size_of::<Slot>();
    let context_bytes = table[0].0.footprint_bytes() - std::mem::size_of::<OutboundSa>();
    let lines = |bytes: usize| bytes.div_ceil(64);
    let stages = [
        Stage {
            objects: SAS,
            stride: sa_bytes,
            lines_per_access: lines(sa_bytes),
        },
        Stage {
            objects: SAS,
            stride: context_bytes,
            lines_per_access: lines(context_bytes),
        },
    ];
    let floor = staged_random_lines_ns(&stages, Pages::Huge, BURST, 1 << 16, ROUNDS);
    (one, random, prefetched, floor)
}

/// Raw seal of each GCM engine on ESP-shaped buffers: the measurement behind `Backend::Fastest`.
fn engine_comparison() -> Vec<(Backend, usize, f64)> {
    let key = filler(Cipher::AesGcm128.key_len(), 5);
    let engines: Vec<(Backend, EngineBox)> = [Backend::Fastest, Backend::Ring, Backend::PureRust]
        .into_iter()
        .map(|b| {
            (
                b,
                build_esp_transform(Cipher::AesGcm128, Integrity::None, &key, &[], b)
                    .expect("engine"),
            )
        })
        .collect();
    let mut results = Vec::new();
    for len in [64usize, 1420] {
        let mut best = vec![f64::MAX; engines.len()];
        for _ in 0..ROUNDS {
            for (slot, (_, engine)) in best.iter_mut().zip(&engines) {
                let mut work: Vec<Vec<u8>> = (0..BURST)
                    .map(|_| vec![0u8; 8 + 8 + (len + 2).div_ceil(4) * 4 + 16])
                    .collect();
                let ns = time_per_packet(BURST, || {
                    for w in work.iter_mut() {
                        engine.seal(w, None);
                    }
                    black_box(&work);
                });
                *slot = slot.min(ns);
            }
        }
        for ((backend, _), ns) in engines.iter().zip(best) {
            results.push((*backend, len, ns));
        }
    }
    results
}

/// Raw seal and open of each CBC+HMAC engine (`Fastest` = OpenSSL for DES/3DES, RustCrypto for
/// AES-CBC; `PureRust` = RustCrypto throughout): the measurement behind the DES/3DES choice.
/// Rows are (suite, backend, length, seal ns, open ns).
fn cbc_engine_comparison() -> Vec<(&'static str, Backend, usize, f64, f64)> {
    let suites = [
        (
            "3DES-CBC+HMAC-MD5-96",
            Cipher::TripleDesCbc,
            Integrity::HmacMd5_96,
        ),
        (
            "DES-CBC+HMAC-SHA1-96",
            Cipher::DesCbc,
            Integrity::HmacSha1_96,
        ),
        (
            "AES-128-CBC+HMAC-SHA1-96",
            Cipher::AesCbc128,
            Integrity::HmacSha1_96,
        ),
    ];
    let mut results = Vec::new();
    for (name, cipher, integrity) in suites {
        let key = filler(cipher.key_len(), 11);
        let mac_key = filler(integrity.key_len(), 12);
        let engines: Vec<(Backend, EngineBox)> = [Backend::Fastest, Backend::PureRust]
            .into_iter()
            .map(|b| {
                let engine = build_esp_transform(cipher, integrity, &key, &mac_key, b);
                (b, engine.expect("engine"))
            })
            .collect();
        for len in [64usize, 1420] {
            let block = if cipher == Cipher::AesCbc128 { 16 } else { 8 };
            let body = (len + 2).div_ceil(block) * block;
            let packet_len = 8 + block + body + integrity.icv_len();
            let mut best = vec![(f64::MAX, f64::MAX); engines.len()];
            for _ in 0..ROUNDS {
                for (slot, (_, engine)) in best.iter_mut().zip(&engines) {
                    let mut work: Vec<Vec<u8>> =
                        (0..BURST).map(|_| vec![0u8; packet_len]).collect();
                    let seal = time_per_packet(BURST, || {
                        for w in work.iter_mut() {
                            engine.seal(w, None);
                        }
                        black_box(&work);
                    });
                    for w in work.iter_mut() {
                        engine.seal(w, None);
                    }
                    let sealed = work.clone();
                    let open = time_per_packet(BURST, || {
                        for (w, s) in work.iter_mut().zip(&sealed) {
                            w.copy_from_slice(s);
                            let _ = black_box(engine.open(w, None));
                        }
                    });
                    *slot = (slot.0.min(seal), slot.1.min(open));
                }
            }
            for ((backend, _), (seal, open)) in engines.iter().zip(best) {
                results.push((name, *backend, len, seal, open));
            }
        }
    }
    results
}

/// `openssl speed -evp aes-128-gcm` bytes per second at the given block size.
fn openssl_speed(bytes: usize) -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-128-gcm",
            "-seconds",
            "1",
            "-bytes",
            &bytes.to_string(),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.to_ascii_uppercase().starts_with("AES-128-GCM"))?;
    let k = line.split_whitespace().last()?.trim_end_matches('k');
    k.parse::<f64>().ok().map(|v| v * 1000.0)
}

fn gbps(avg_len: f64, ns: f64) -> f64 {
    avg_len * 8.0 / ns
}

fn main() {
    // `esp table` measures only the SA-table figures (quick look while tuning the layout).
    let only_table = std::env::args().nth(1).as_deref() == Some("table");
    // `esp engines` measures only the engine comparisons.
    let only_engines = std::env::args().nth(1).as_deref() == Some("engines");
    let mut rows = Vec::new();
    for &(cipher, integrity) in SUITES.iter().filter(|_| !only_table && !only_engines) {
        for &size in &SIZES {
            rows.push(measure(cipher, integrity, size));
        }
    }
    println!("## ESP on one core (inner packet size; ns per packet; Gbit/s of inner bytes)\n");
    println!("| suite | size | encap ns | encap Gb/s | raw seal ns | seal/encap | framing ns | decap ns | raw open ns |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} |",
            r.suite,
            r.size,
            r.encap_ns,
            gbps(r.avg_len, r.encap_ns),
            r.raw_seal_ns,
            r.raw_seal_ns / r.encap_ns,
            r.encap_ns - r.raw_seal_ns,
            r.decap_ns,
            r.raw_open_ns
        );
    }
    let mut table_rows = Vec::new();
    for backend in [Backend::Fastest, Backend::Ring]
        .into_iter()
        .filter(|_| !only_engines)
    {
        for size in [64, 1420] {
            let (one, random, prefetched, floor) = sa_table(size, backend);
            table_rows.push((backend, size, one, random, prefetched, floor));
        }
    }
    println!("\n## 100,000 SAs at random vs one SA (AES-128-GCM encap, one packet per call, ns per packet)\n");
    // Misses overlapped perfectly with other packets' work cost max(one SA, floor): the best
    // ratio this SA layout allows on this machine.
    println!("| engine | size | one SA | 100k random | ratio | 100k random, prefetched | ratio | memory floor of the SA lines | best ratio the layout allows, max(one, floor) ÷ one |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (backend, size, one, random, pre, floor) in &table_rows {
        println!(
            "| {backend:?} | {size} | {one:.0} | {random:.0} | {:.2} | {pre:.0} | {:.2} | {floor:.0} | {:.2} |",
            random / one,
            pre / one,
            one.max(*floor) / one
        );
    }
    if only_table {
        return;
    }
    let engines = engine_comparison();
    println!(
        "\n## AES-128-GCM engines, raw seal ns per packet (`Fastest` = intel-ipsec-mb {:?}, falls back to ring)\n",
        dataplane::crypto::ipsec_mb_arch()
    );
    println!("| engine | 64 B | 1420 B |");
    println!("|---|---|---|");
    for backend in [Backend::Fastest, Backend::Ring, Backend::PureRust] {
        let at = |len| {
            engines
                .iter()
                .find(|(b, l, _)| *b == backend && *l == len)
                .map_or(f64::NAN, |e| e.2)
        };
        println!("| {backend:?} | {:.0} | {:.0} |", at(64), at(1420));
    }
    let cbc_engines = cbc_engine_comparison();
    println!("\n## CBC+HMAC engines, raw ns per packet (`Fastest`: OpenSSL libcrypto for DES/3DES, RustCrypto for AES-CBC; `PureRust`: RustCrypto)\n");
    println!("| suite | engine | size | seal ns | open ns | seal MB/s |");
    println!("|---|---|---|---|---|---|");
    for (name, backend, len, seal, open) in &cbc_engines {
        println!(
            "| {name} | {backend:?} | {len} | {seal:.0} | {open:.0} | {:.1} |",
            *len as f64 / seal * 1e3
        );
    }
    let openssl: Vec<(usize, Option<f64>)> = [64usize, 1420, 16384]
        .iter()
        .map(|&b| (b, openssl_speed(b)))
        .collect();
    println!("\n## Outside reference: `openssl speed -evp aes-128-gcm -seconds 1 -bytes N`\n");
    println!("| bytes | GB/s | ns per 1420 B |");
    println!("|---|---|---|");
    for (b, v) in &openssl {
        match v {
            Some(bps) => println!("| {b} | {:.2} | {:.0} |", bps / 1e9, 1420.0 / bps * 1e9),
            None => println!("| {b} | n/a | n/a |"),
        }
    }
    let json = json!({
        "bench": "esp",
        "burst": BURST,
        "rows": rows.iter().map(|r| json!({
            "suite": r.suite, "size": r.size, "avg_inner_len": r.avg_len,
            "encap_ns": r.encap_ns, "decap_ns": r.decap_ns, "decap_copy_ns_subtracted": r.copy_ns,
            "raw_seal_ns": r.raw_seal_ns, "raw_open_ns": r.raw_open_ns,
            "encap_gbps": gbps(r.avg_len, r.encap_ns), "seal_over_encap": r.raw_seal_ns / r.encap_ns,
        })).collect::<Vec<_>>(),
        "sa_table": table_rows.iter().map(|(b, size, one, random, pre, floor)| json!({
            "memory_floor_ns": floor,
            "engine": format!("{b:?}"), "sas": 100_000, "bytes": size,
            "one_sa_ns": one, "random_ns": random, "random_prefetched_ns": pre,
        })).collect::<Vec<_>>(),
        "gcm_engines_raw_seal_ns": engines.iter().map(|(b, l, ns)| json!({"engine": format!("{b:?}"), "bytes": l, "ns": ns})).collect::<Vec<_>>(),
        "cbc_engines_raw_ns": cbc_engines.iter().map(|(name, b, l, seal, open)| json!({"suite": name, "engine": format!("{b:?}"), "bytes": l, "seal_ns": seal, "open_ns": open})).collect::<Vec<_>>(),
        "ipsec_mb_arch": dataplane::crypto::ipsec_mb_arch(),
        "openssl_aes_128_gcm_bytes_per_s": openssl.iter().map(|(b, v)| json!({"bytes": b, "bytes_per_s": v})).collect::<Vec<_>>(),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("esp.json");
    match std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")) {
        Ok(()) => println!("\nwrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}
