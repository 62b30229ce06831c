//! Bad input never panics the parser: random bytes, random token streams over the grammar's
//! own words, and random mutations of the real examples, a few thousand cases each. Every
//! error must point inside the text.

use control::config;

/// xorshift64*: deterministic, so a failing case is reproducible from its index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ";",
    "\n",
    " ",
    "\"",
    "/*",
    "*/",
    "#",
    "inactive:",
    "deactivate",
    "set",
    "interfaces",
    "ge-0/0/0",
    "sp-1/2/0",
    "ams0",
    "unit",
    "0",
    "1",
    "family",
    "inet",
    "inet6",
    "address",
    "10.1.1.1/24",
    "::/0",
    "service-domain",
    "inside",
    "outside",
    "dial-options",
    "ipsec-interface-id",
    "shared",
    "dedicated",
    "access",
    "profile",
    "p",
    "client",
    "*",
    "ike",
    "allowed-proxy-pair",
    "remote",
    "local",
    "0.0.0.0/0",
    "pre-shared-key",
    "ascii-text",
    "hexadecimal",
    "0xzz",
    "interface-id",
    "services",
    "service-set",
    "next-hop-service",
    "inside-service-interface",
    "sp-1/2/0.1",
    "ipsec-vpn-options",
    "local-gateway",
    "ike-access-profile",
    "ipsec-vpn",
    "rule",
    "term",
    "then",
    "manual",
    "direction",
    "bidirectional",
    "spi",
    "99999999999999999999",
    "routing-instances",
    "routing-options",
    "static",
    "route",
    "next-hop",
    "dataplane",
    "pic",
    "cores",
    "device",
    "é",
    "\u{0}",
    "\\",
];

fn check_positions(text: &str) {
    let lines = text.split('\n').count() as u32;
    if let Err(errors) = config::parse(text) {
        assert!(!errors.is_empty());
        for e in errors.iter() {
            assert!(
                e.pos.line >= 1 && e.pos.line <= lines,
                "{e:?} outside {lines} lines"
            );
            assert!(e.pos.col >= 1);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..2000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check_positions(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn random_token_streams_never_panic() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    for _ in 0..4000 {
        let n = rng.below(60);
        let mut text = String::new();
        for _ in 0..n {
            text.push_str(rng.pick(WORDS));
            text.push(' ');
        }
        check_positions(&text);
    }
}

#[test]
fn mutated_examples_never_panic() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            sources.push(std::fs::read_to_string(path).unwrap());
        }
    }
    let mut rng = Rng(0xfeed_beef_1357_9bdf);
    for _ in 0..1500 {
        let source = &sources[rng.below(sources.len())];
        let mut chars: Vec<char> = source.chars().collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(chars.len() + 1);
            match rng.below(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => {
                    let w = rng.pick(WORDS);
                    for (i, c) in w.chars().enumerate() {
                        chars.insert(at + i, c);
                    }
                }
                _ => chars.truncate(at),
            }
        }
        check_positions(&chars.into_iter().collect::<String>());
    }
}
