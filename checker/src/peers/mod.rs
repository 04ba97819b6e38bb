//! Peers and measurements the labs share, each in a file named for what
//! it holds.

pub mod pipe_peer;
pub mod wakeups;
