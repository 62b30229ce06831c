//! The control side of dyntun: the Junos configuration model, the IKEv1 responder (sans-IO) and
//! the tunnel state (pools, dynamic rules, reverse routes) it drives.

pub mod config;
pub mod ike;
pub mod pki;
pub mod tunnels;
