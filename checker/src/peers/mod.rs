//! Peers and gates the labs share: each file holds one kind.

pub mod gate;
pub mod waiting;
