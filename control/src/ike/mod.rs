//! The IKEv1 responder: a sans-IO core (bytes and time in, bytes and events out) for Main Mode
//! with pre-shared keys, Quick Mode, NAT traversal, DPD answers and deletes, plus a plain UDP
//! driver around it.
//!
//! ```text
//! let mut r = Responder::new(ResponderPolicy::new(local_addrs, psk_table));
//! r.handle_datagram(now, local, remote, bytes);   // 4500: without the non-ESP marker
//! r.handle_timeout(now);                          // when poll_timeout() has passed
//! while let Some(t) = r.poll_transmit() { .. }    // t.bytes carries the marker on 4500
//! while let Some(e) = r.poll_event() { .. }       // IkeSaUp, ChildSaUp{inbound, outbound, ..}, ..
//! ```
//!
//! Layout: codec (`header`, `payload`, `sa_payload`, `identity`, `notify`, `numbers`), crypto
//! (`crypto`, `dh`, `keys`, `protection`, `secret`), choices (`policy`, `phase1_choice`,
//! `phase2_choice`, `natt`), state and exchanges (`responder`, `ike_sa`, `main_mode`,
//! `identity_proof`, `quick_mode`, `informational`), I/O (`driver`) and `test_initiator` for
//! tests and benchmarks.

pub mod auth_method;
pub mod certificate_auth;
pub mod codec_error;
pub mod crypto;
pub mod dh;
pub mod driver;
pub mod events;
pub mod header;
pub mod identity;
pub mod identity_proof;
pub mod ike_sa;
pub mod informational;
pub mod keys;
pub mod main_mode;
pub mod main_mode_signature;
pub mod natt;
pub mod notify;
pub mod numbers;
pub mod payload;
pub mod phase1_choice;
pub mod phase2_choice;
pub mod policy;
pub mod protection;
pub mod quick_mode;
pub mod responder;
pub mod sa_payload;
pub mod secret;
pub mod test_initiator;

pub use auth_method::AuthMethod;
pub use certificate_auth::{CertificateAuth, LocalIdentity};
pub use events::{ChildId, DownReason, Exchange, FailureReason, IkeEvent, IkeFailure, IkeSaId};
pub use policy::{IkeProposal, IpsecProposal, Limits, PskTable, ResponderPolicy, SpiAllocator};
pub use responder::{IkeSaView, Responder, Transmit};
pub use secret::Secret;
