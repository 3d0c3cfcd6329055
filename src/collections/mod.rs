//! Containers whose every operation does bounded work: none grows by copying all of itself, so
//! no single command or timer tick pays for the size of an event.

pub mod fenwick;
pub mod ordered_blocks;
pub mod seg_vec;
pub mod sharded;
pub mod sum_blocks;
