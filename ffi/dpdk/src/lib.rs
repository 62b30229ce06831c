//! Placeholder until the safe layer lands.
