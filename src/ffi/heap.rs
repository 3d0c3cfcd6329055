//! The module's global allocator: Redis' own allocator (so `used_memory`, `maxmemory` and
//! `INFO memory` count the module's memory) with a small per-thread shelf of freed small blocks
//! in front of it.
//!
//! Why the shelf: a write command allocates and frees a few dozen short-lived small blocks
//! (parsed arguments, the effect, the journal entry, replication arguments), and every trip
//! through `RM_Alloc` / `RM_Free` costs the allocator plus the `malloc_usable_size` call Redis
//! makes to keep `used_memory`; callgrind put those trips at about a third of a `SEAT.HOLD`.
//! Handing back the block of the same size freed a moment ago removes most of them. The shelf is
//! bounded (`CLASSES` x `DEPTH` blocks per thread, at most 68 KiB), and shelved blocks stay
//! counted by Redis as used, so its accounting remains an upper bound.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

/// Small blocks are shelved by size rounded up to a multiple of `GRANULE`.
const GRANULE: usize = 16;
/// Size classes 16, 32, ..., 256 bytes.
const CLASSES: usize = 16;
/// Blocks kept per class and thread.
const DEPTH: usize = 32;

struct Shelf {
    blocks: [[*mut u8; DEPTH]; CLASSES],
    len: [usize; CLASSES],
}

thread_local! {
    // No destructor, so no registration or allocation on first use; a thread that exits leaves
    // at most its shelf behind (Redis' threads live as long as the server).
    static SHELF: UnsafeCell<Shelf> = const {
        UnsafeCell::new(Shelf { blocks: [[null_mut(); DEPTH]; CLASSES], len: [0; CLASSES] })
    };
}

/// The size class of a layout, if blocks of it are shelved.
fn class_of(layout: Layout) -> Option<usize> {
    (layout.align() <= GRANULE && layout.size() <= CLASSES * GRANULE)
        .then(|| layout.size().max(1).div_ceil(GRANULE) - 1)
}

/// The layout every block of a class is allocated with, whatever size was asked for.
fn class_layout(class: usize) -> Layout {
    // Sizes are multiples of 16 up to 256 with alignment 16: always a valid layout.
    Layout::from_size_align((class + 1) * GRANULE, GRANULE).expect("valid class layout")
}

/// Takes a shelved block of `class`, if there is one.
fn take(class: usize) -> Option<*mut u8> {
    SHELF
        .try_with(|shelf| {
            // SAFETY: the shelf is only touched here and in `put`, which neither call out nor
            // re-enter, so this is the only reference while it lives.
            let shelf = unsafe { &mut *shelf.get() };
            let len = &mut shelf.len[class];
            (*len > 0).then(|| {
                *len -= 1;
                shelf.blocks[class][*len]
            })
        })
        .ok()
        .flatten()
}

/// Shelves a block of `class`; false when the shelf for it is full.
fn put(class: usize, block: *mut u8) -> bool {
    SHELF
        .try_with(|shelf| {
            // SAFETY: as in `take`.
            let shelf = unsafe { &mut *shelf.get() };
            let len = &mut shelf.len[class];
            if *len == DEPTH {
                return false;
            }
            shelf.blocks[class][*len] = block;
            *len += 1;
            true
        })
        .unwrap_or(false)
}

/// `Backing` with a shelf of small freed blocks in front.
pub struct Shelved<Backing>(pub Backing);

// SAFETY: every block handed out comes from `Backing` with a layout at least as large and as
// aligned as asked (the class layout for small blocks), and goes back to it with that same
// layout; a block is on at most one shelf, and a shelved block is handed out once.
unsafe impl<Backing: GlobalAlloc> GlobalAlloc for Shelved<Backing> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => take(class).unwrap_or_else(|| self.0.alloc(class_layout(class))),
            None => self.0.alloc(layout),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => {
                if !put(class, block) {
                    self.0.dealloc(block, class_layout(class));
                }
            }
            None => self.0.dealloc(block, layout),
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class_of(layout), class_of(new_layout)) {
            (Some(old), Some(new)) if old == new => block,
            (None, None) => self.0.realloc(block, layout, new_size),
            _ => move_block(self, block, layout, new_size),
        }
    }
}

/// Reallocates by allocating `new_size` bytes, copying and freeing the old block.
///
/// # Safety
/// As `GlobalAlloc::realloc`.
unsafe fn move_block(
    heap: &impl GlobalAlloc,
    block: *mut u8,
    layout: Layout,
    new_size: usize,
) -> *mut u8 {
    let moved = heap.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
    if !moved.is_null() {
        std::ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
        heap.dealloc(block, layout);
    }
    moved
}

/// Redis' allocator (`RM_Alloc`, `RM_Realloc`, `RM_Free`).
#[cfg(not(test))]
pub struct RedisHeap;

#[cfg(not(test))]
// SAFETY: Redis' allocator (jemalloc or libc malloc) aligns every block to at least 16 bytes and
// to the natural alignment of its size class; sizes are rounded up to the alignment like
// redis-module's RedisAlloc does, which covers larger alignments.
unsafe impl GlobalAlloc for RedisHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size().next_multiple_of(layout.align());
        redis_api(redis_module::raw::RedisModule_Alloc)(size).cast()
    }

    unsafe fn dealloc(&self, block: *mut u8, _layout: Layout) {
        redis_api(redis_module::raw::RedisModule_Free)(block.cast())
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() > GRANULE {
            // realloc keeps only the allocator's natural alignment: move by hand.
            return move_block(self, block, layout, new_size);
        }
        redis_api(redis_module::raw::RedisModule_Realloc)(block.cast(), new_size).cast()
    }
}

/// A Redis allocator entry point; they are set before the module's first allocation.
#[cfg(not(test))]
fn redis_api<F>(function: Option<F>) -> F {
    function.unwrap_or_else(|| {
        // Without Redis' allocator there is nothing sane to do (and panicking allocates).
        std::process::abort()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    #[test]
    fn classes_cover_small_blocks_only() {
        let layout = |size, align| Layout::from_size_align(size, align).unwrap();
        assert_eq!(class_of(layout(1, 1)), Some(0));
        assert_eq!(class_of(layout(16, 8)), Some(0));
        assert_eq!(class_of(layout(17, 8)), Some(1));
        assert_eq!(class_of(layout(256, 16)), Some(15));
        assert_eq!(class_of(layout(257, 8)), None);
        assert_eq!(class_of(layout(64, 32)), None);
        for class in 0..CLASSES {
            assert_eq!(class_of(class_layout(class)), Some(class));
        }
    }

    #[test]
    fn a_freed_small_block_is_handed_out_again_and_the_shelf_is_bounded() {
        let heap = Shelved(System);
        let small = Layout::from_size_align(40, 8).unwrap();
        // Runs on its own test thread, so the shelf starts empty.
        unsafe {
            let first = heap.alloc(small);
            heap.dealloc(first, small);
            // Same class (33..=48 bytes), so the same block.
            let again = heap.alloc(Layout::from_size_align(48, 8).unwrap());
            assert_eq!(again, first);
            heap.dealloc(again, small);
            let many: Vec<*mut u8> = (0..DEPTH + 8).map(|_| heap.alloc(small)).collect();
            for &block in &many {
                heap.dealloc(block, small);
            }
            assert!(take(class_of(small).unwrap()).is_some());
            let shelved = (0..DEPTH + 8)
                .filter(|_| take(class_of(small).unwrap()).is_some())
                .count();
            assert_eq!(
                shelved,
                DEPTH - 1,
                "one was taken above; the rest went back"
            );
        }
    }

    #[test]
    fn realloc_keeps_the_block_within_a_class_and_moves_the_bytes_across() {
        let heap = Shelved(System);
        unsafe {
            let layout = Layout::from_size_align(20, 8).unwrap();
            let block = heap.alloc(layout);
            block.write_bytes(7, 20);
            assert_eq!(heap.realloc(block, layout, 30), block);
            let grown = heap.realloc(block, Layout::from_size_align(30, 8).unwrap(), 1000);
            assert!((0..20).all(|i| *grown.add(i) == 7));
            let big = Layout::from_size_align(1000, 8).unwrap();
            let shrunk = heap.realloc(grown, big, 10);
            assert!((0..10).all(|i| *shrunk.add(i) == 7));
            heap.dealloc(shrunk, Layout::from_size_align(10, 8).unwrap());
        }
    }
}
