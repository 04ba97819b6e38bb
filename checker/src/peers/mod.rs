//! Peers and measurements shared by the labs, one file each, named for
//! what it holds.

pub mod calls;
