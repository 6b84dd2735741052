//! The module's allocator: blocks of up to 2 KiB by size class (powers of two), popped from the
//! class's free list or carved from a 64 KiB chunk; larger blocks, and the chunks, come from the
//! standard allocator (dlmalloc). A decision builds and drops hundreds of small JSON values, and
//! dlmalloc's bins and coalescing cost an injection about 50,000 of its instructions
//! (docs/performance.md). A freed block stays in its class for the next allocation of that size
//! and never returns to dlmalloc: an instance keeps, per class, the most it held at once, plus
//! the tail of each chunk too short for the block that opened the next one (under 2 KiB).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

const CLASSES: usize = 9;
const SMALLEST: usize = 8;
const LARGEST: usize = SMALLEST << (CLASSES - 1);
const CHUNK: usize = 64 * 1024;

/// The allocator's state: one free list per class and the chunk being carved.
pub struct SizeClasses {
    state: UnsafeCell<State>,
}

struct State {
    free: [*mut u8; CLASSES],
    next: *mut u8,
    end: *mut u8,
}

impl SizeClasses {
    pub const fn new() -> Self {
        Self {
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                next: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }
}

// SAFETY: the module runs on one thread (wasm32 without the threads proposal's atomics).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for SizeClasses {}

/// The class of a layout (0 for 8 bytes, 1 for 16, ...), none for a block larger than the
/// largest class or aligned beyond 8 bytes (chunks and blocks are 8-aligned).
fn class(layout: Layout) -> Option<usize> {
    if layout.size() > LARGEST || layout.align() > SMALLEST {
        return None;
    }
    let size = layout.size().max(SMALLEST);
    Some((size.next_power_of_two().trailing_zeros() - SMALLEST.trailing_zeros()) as usize)
}

unsafe impl GlobalAlloc for SizeClasses {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else {
            return unsafe { System.alloc(layout) };
        };
        let state = unsafe { &mut *self.state.get() };
        let Some(head) = state.free.get_mut(class) else {
            return ptr::null_mut();
        };
        if !head.is_null() {
            let block = *head;
            *head = unsafe { block.cast::<*mut u8>().read() };
            return block;
        }
        let size = SMALLEST << class;
        if (state.end as usize) - (state.next as usize) < size {
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, SMALLEST)) };
            if chunk.is_null() {
                return chunk;
            }
            state.next = chunk;
            state.end = unsafe { chunk.add(CHUNK) };
        }
        let block = state.next;
        state.next = unsafe { block.add(size) };
        block
    }

    #[inline(never)]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class(layout) else {
            return unsafe { System.dealloc(block, layout) };
        };
        let state = unsafe { &mut *self.state.get() };
        if let Some(head) = state.free.get_mut(class) {
            unsafe { block.cast::<*mut u8>().write(*head) };
            *head = block;
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (Some(old), Some(new)) if old == new => block,
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Alloc { size: usize, align: usize },
        Free(usize),
        Realloc(usize, usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0usize..3000, 0u32..5).prop_map(|(size, align)| Step::Alloc { size: size + 1, align: 1 << align }),
            2 => any::<usize>().prop_map(Step::Free),
            2 => (any::<usize>(), 1usize..3000).prop_map(|(which, size)| Step::Realloc(which, size)),
        ]
    }

    /// A live block: where, its layout, and the byte it was filled with.
    struct Block(*mut u8, Layout, u8);

    fn fill(block: &Block) {
        unsafe { ptr::write_bytes(block.0, block.2, block.1.size()) };
    }

    fn intact(block: &Block, size: usize) -> bool {
        (0..size).all(|offset| unsafe { block.0.add(offset).read() } == block.2)
    }

    proptest! {
        /// Blocks are aligned, never overlap, and keep their contents through reallocation.
        #[test]
        fn blocks_are_aligned_apart_and_kept(steps in proptest::collection::vec(step(), 1..200)) {
            let allocator = SizeClasses::new();
            let mut live: Vec<Block> = Vec::new();
            for (number, step) in steps.into_iter().enumerate() {
                let mark = (number % 251) as u8 + 1;
                match step {
                    Step::Alloc { size, align } => {
                        let layout = Layout::from_size_align(size, align).expect("layout");
                        let block = Block(unsafe { allocator.alloc(layout) }, layout, mark);
                        prop_assert!(!block.0.is_null());
                        prop_assert_eq!(block.0 as usize % align, 0);
                        fill(&block);
                        live.push(block);
                    }
                    Step::Free(which) if !live.is_empty() => {
                        let block = live.swap_remove(which % live.len());
                        prop_assert!(intact(&block, block.1.size()));
                        unsafe { allocator.dealloc(block.0, block.1) };
                    }
                    Step::Realloc(which, size) if !live.is_empty() => {
                        let index = which % live.len();
                        let old = live.swap_remove(index);
                        let moved = unsafe { allocator.realloc(old.0, old.1, size) };
                        prop_assert!(!moved.is_null());
                        let layout = Layout::from_size_align(size, old.1.align()).expect("layout");
                        let block = Block(moved, layout, old.2);
                        prop_assert!(intact(&block, old.1.size().min(size)));
                        let block = Block(moved, layout, mark);
                        fill(&block);
                        live.push(block);
                    }
                    _ => {}
                }
                for block in &live {
                    prop_assert!(intact(block, block.1.size()));
                }
            }
            for block in live {
                unsafe { allocator.dealloc(block.0, block.1) };
            }
        }
    }

    #[test]
    fn a_freed_block_is_the_next_of_its_class() {
        let allocator = SizeClasses::new();
        let layout = Layout::from_size_align(100, 8).expect("layout");
        let first = unsafe { allocator.alloc(layout) };
        unsafe { allocator.dealloc(first, layout) };
        // Another size of the same class (65 to 128 bytes).
        let same_class = Layout::from_size_align(120, 4).expect("layout");
        for _ in 0..10_000 {
            let again = unsafe { allocator.alloc(same_class) };
            assert_eq!(again, first, "the same class reuses the freed block");
            unsafe { allocator.dealloc(again, same_class) };
        }
    }

    #[test]
    fn classes_are_powers_of_two_up_to_the_largest() {
        let class_of = |size, align| class(Layout::from_size_align(size, align).expect("layout"));
        assert_eq!(class_of(1, 1), Some(0));
        assert_eq!(class_of(8, 8), Some(0));
        assert_eq!(class_of(9, 1), Some(1));
        assert_eq!(class_of(LARGEST, 1), Some(CLASSES - 1));
        assert_eq!(class_of(LARGEST + 1, 1), None);
        assert_eq!(class_of(8, 16), None);
    }
}
