//! Peers, gates and measurements the labs share: each file holds one kind,
//! named for what it holds.

pub mod calls;
pub mod gate;
pub mod pipe_peer;
pub mod reversing;
pub mod waiting;
pub mod wakeups;
