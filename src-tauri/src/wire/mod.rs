//! Wire formats below every protocol room: a borrowed JSON scan for the per-frame messages. Pure, no
//! I/O, imports no other room.

pub mod json_scan;
