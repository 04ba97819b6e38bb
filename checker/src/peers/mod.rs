//! Peers the checker plays against several labs, built once: each lab
//! says which transport it speaks, the peer does the misbehaving.

pub mod reversing;
