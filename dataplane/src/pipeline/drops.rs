//! Per-worker packet counters, every drop by its reason. Written only by the owning worker
//! (relaxed atomics, so no locked instructions on x86), read by the control thread for `show`.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! pipeline_counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        #[derive(Default)]
        pub struct PipelineCounters {
            $(#[doc = $doc] pub $name: AtomicU64,)*
        }

        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
        pub struct PipelineSnapshot {
            $(#[doc = $doc] pub $name: u64,)*
        }

        impl PipelineCounters {
            pub fn snapshot(&self) -> PipelineSnapshot {
                PipelineSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl PipelineSnapshot {
            /// (name, value) pairs in declaration order, for text output and metrics.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }

            pub fn add(&mut self, other: &PipelineSnapshot) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

pipeline_counters! {
    rx_packets: "frames received",
    tx_packets: "frames handed to a tx queue",
    punted: "frames sent to the control thread (ARP, IKE, ICMP to the gateway)",
    encrypted: "packets sealed into a tunnel",
    decrypted: "packets opened from a tunnel",
    forwarded_clear: "packets routed without IPsec",
    handed_off: "packets passed to the worker that owns their SA",
    drop_not_for_us: "frames addressed to another MAC",
    drop_bad_l2: "truncated or unsupported Ethernet frames",
    drop_bad_l3: "malformed IP headers",
    drop_truncated: "IP packets longer than the frame that carried them (a net_af_packet port passes on the kernel's reassembly of fragments, cut to its ring frame)",
    drop_ttl_expired: "TTL reached zero",
    drop_local_other: "packets to a gateway address that no service wants",
    drop_local_via_tunnel: "decrypted packets for the gateway itself other than echo requests (only ping is answered through a tunnel)",
    echo_via_tunnel: "echo requests to the gateway that came out of a tunnel, answered back into it (counted when the reply is sent on)",
    tunnel_to_tunnel: "decrypted packets routed into another tunnel (hub and spoke)",
    drop_no_route: "no route in the routing instance",
    drop_no_rule: "entered a service set and matched no rule",
    drop_no_sa: "no SA for the SPI or for the rule's tunnel",
    held_for_neighbor: "packets whose next hop was unresolved, kept for the ARP / ND answer (or drop_no_neighbor when the hold was full)",
    drop_no_neighbor: "next hop not resolved within the hold time, or the hold queue was full",
    drop_sa_processing: "refused by the ESP/AH engine (auth, replay, padding, lifetime; per SA in show ipsec)",
    icmp_too_big: "inner packets with DF too big for the tunnel, answered with ICMP fragmentation-needed",
    sent_for_fragmentation: "inner packets without DF too big for the tunnel, split before encryption",
    drop_fragmentation_failed: "pre-fragmentation impossible (no buffers, MTU too small), or a packet out of one tunnel too big for the next",
    fragments_held: "outer fragments for the gateway waiting for the rest of their datagram",
    reassembled: "outer datagrams put back together",
    drop_reassembly: "outer fragments refused (malformed, too large, table full, timed out)",
    drop_proxy_mismatch: "decrypted packet outside the SA's proxy identities",
    drop_unsupported: "IPv6 next hops and other paths not implemented yet",
    drop_punt_full: "control thread ring full",
    drop_handoff_full: "owner worker ring full",
    drop_tx_full: "tx queue full",
}

/// Adds one to a counter that only this thread writes.
#[inline]
pub fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

#[inline]
pub fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}
