//! The IKEv1 responder: a sans-IO core (bytes and time in, bytes and events out) for Main Mode
//! with pre-shared keys, Quick Mode, NAT traversal, DPD answers and deletes, plus a plain UDP
//! driver around it.

pub mod codec_error;
pub mod crypto;
pub mod dh;
pub mod driver;
pub mod events;
pub mod header;
pub mod identity;
pub mod ike_sa;
pub mod informational;
pub mod keys;
pub mod main_mode;
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

pub use events::{ChildId, DownReason, Exchange, FailureReason, IkeEvent, IkeFailure, IkeSaId};
pub use policy::{IkeProposal, IpsecProposal, Limits, PskTable, ResponderPolicy, SpiAllocator};
pub use responder::{IkeSaView, Responder, Transmit};
pub use secret::Secret;
pub mod test_initiator;
