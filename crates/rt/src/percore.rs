//! The per-core block and the register that finds it.
//!
//! Every core that runs cairn code owns one [`CoreBlock`]: its id, its Ebb translation table
//! and a pointer to its event manager. EbbRT finds per-core state through a virtual region
//! mapped to different pages on each core; cairn finds it through the thread pointer, which is
//! what both of its platforms already dedicate to per-CPU state:
//!
//! - hosted on x86-64 Linux, a word in the ELF thread-local block (`fs:[sym@tpoff]`, the
//!   local-exec TLS model), so one `mov` gives this thread's block with no call into std;
//! - native (`target_os = "none"`), the kernel points `gs` at the block when it starts a core.
//!
//! A thread that is not a cairn core reads null, so [`current`] is safe to call anywhere.
//!
//! The local-exec model limits cairn-rt to executables (not `dlopen`ed shared objects), which is
//! how cairn is built and tested.

use core::cell::Cell;

use crate::ebb::EbbTable;

/// The index of a core, from 0 to [`core_count`](crate::platform::Platform::core_count) - 1.
pub type CoreId = usize;

/// The most cores one cairn runtime can drive.
pub const MAX_CORES: usize = 64;

/// State that belongs to one core and is reached through the thread pointer.
///
/// The block is created by the platform when it starts a core and lives until the core stops.
/// Only the owning core reads `ebbs` on the fast path; other cores touch it only through the
/// atomic slots of [`EbbTable`].
#[repr(C)]
pub struct CoreBlock {
    /// This core's id.
    pub core: CoreId,
    /// The event manager of this core, set once it is created (type-erased to keep this module
    /// free of the event loop's types).
    pub(crate) event_manager: Cell<*const ()>,
    /// The Ebb translation table: one representative pointer per [`EbbId`](crate::EbbId).
    pub ebbs: EbbTable,
}

impl CoreBlock {
    /// Creates the block for `core` with an empty translation table.
    pub fn new(core: CoreId) -> Self {
        assert!(core < MAX_CORES, "core {core} is beyond MAX_CORES ({MAX_CORES})");
        CoreBlock { core, event_manager: Cell::new(core::ptr::null()), ebbs: EbbTable::new() }
    }
}

#[cfg(all(target_arch = "x86_64", not(target_os = "none")))]
mod reg {
    // One pointer-sized slot in the thread-local image (.tbss is zero-filled for every new
    // thread, so a thread that never became a core reads null).
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 3",
        ".globl __cairn_core_block",
        ".type __cairn_core_block,@object",
        ".size __cairn_core_block,8",
        "__cairn_core_block:",
        ".zero 8",
        ".popsection",
    );

    #[inline(always)]
    pub fn load() -> *const super::CoreBlock {
        let ptr: *const super::CoreBlock;
        // SAFETY: reads this thread's own slot in its static TLS block; the slot is always
        // mapped and initialised (zero) for every thread of the executable.
        unsafe {
            core::arch::asm!(
                "mov {}, qword ptr fs:[__cairn_core_block@tpoff]",
                out(reg) ptr,
                options(nostack, readonly, preserves_flags, pure)
            );
        }
        ptr
    }

    /// # Safety
    /// `ptr` must be null or point to a block that outlives its installation on this thread.
    #[inline]
    pub unsafe fn store(ptr: *const super::CoreBlock) {
        // SAFETY: writes this thread's own TLS slot; no other thread can observe it.
        unsafe {
            core::arch::asm!(
                "mov qword ptr fs:[__cairn_core_block@tpoff], {}",
                in(reg) ptr,
                options(nostack, preserves_flags)
            );
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod reg {
    // Native: the kernel sets the GS base of each CPU to a word that holds its block's address.
    #[inline(always)]
    pub fn load() -> *const super::CoreBlock {
        let ptr: *const super::CoreBlock;
        // SAFETY: the native kernel points GS at a per-CPU word before running cairn code.
        unsafe {
            core::arch::asm!("mov {}, qword ptr gs:[0]", out(reg) ptr,
                options(nostack, readonly, preserves_flags, pure));
        }
        ptr
    }

    /// # Safety
    /// GS must point at this CPU's per-CPU word; `ptr` must outlive its installation.
    #[inline]
    pub unsafe fn store(ptr: *const super::CoreBlock) {
        // SAFETY: the caller guarantees GS points at this CPU's per-CPU word.
        unsafe {
            core::arch::asm!("mov qword ptr gs:[0], {}", in(reg) ptr,
                options(nostack, preserves_flags));
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod reg {
    // Other architectures: one global slot, enough for a single-core port until that
    // architecture's thread pointer is wired up.
    use core::sync::atomic::{AtomicPtr, Ordering};
    static SLOT: AtomicPtr<super::CoreBlock> = AtomicPtr::new(core::ptr::null_mut());

    #[inline(always)]
    pub fn load() -> *const super::CoreBlock {
        SLOT.load(Ordering::Relaxed)
    }

    /// # Safety
    /// `ptr` must outlive its installation.
    #[inline]
    pub unsafe fn store(ptr: *const super::CoreBlock) {
        SLOT.store(ptr as *mut _, Ordering::Relaxed)
    }
}

/// The calling core's block, or null when the calling thread is not a cairn core.
#[inline(always)]
pub fn current() -> *const CoreBlock {
    reg::load()
}

/// The calling core's block, if the calling thread is a cairn core.
#[inline(always)]
pub fn current_block() -> Option<&'static CoreBlock> {
    // SAFETY: an installed block outlives its installation (the contract of `install`).
    unsafe { current().as_ref() }
}

/// The calling core's id, or `None` when the calling thread is not a cairn core.
#[inline(always)]
pub fn current_core() -> Option<CoreId> {
    current_block().map(|b| b.core)
}

/// Makes `block` the calling thread's core block (null to leave core mode).
///
/// # Safety
///
/// `block` must be null or stay valid and unmoved until it is uninstalled, and no two threads
/// may run with the same block installed.
pub unsafe fn install(block: *const CoreBlock) {
    let previous = current();
    if !previous.is_null() {
        crate::ebb::unregister_block(previous);
    }
    if !block.is_null() {
        crate::ebb::register_block(block);
    }
    // SAFETY: forwarded contract.
    unsafe { reg::store(block) }
}

/// A core block installed on the calling thread for the lifetime of the guard; tests and
/// benchmarks use it to act as core `n` without a whole platform.
pub struct CoreGuard {
    block: *mut CoreBlock,
    previous: *const CoreBlock,
}

impl CoreGuard {
    /// Installs a fresh block for `core` on this thread until the guard is dropped.
    pub fn enter(core: CoreId) -> CoreGuard {
        let block = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(CoreBlock::new(core)));
        let previous = current();
        // SAFETY: the block is heap-allocated and freed only in Drop, after uninstalling.
        unsafe { install(block) };
        CoreGuard { block, previous }
    }

    /// The installed block.
    pub fn block(&self) -> &CoreBlock {
        // SAFETY: the guard owns the block until Drop.
        unsafe { &*self.block }
    }
}

impl Drop for CoreGuard {
    fn drop(&mut self) {
        // SAFETY: restores what was installed before; then frees the block nobody can reach.
        unsafe {
            install(self.previous);
            drop(alloc::boxed::Box::from_raw(self.block));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_core_thread_reads_none() {
        std::thread::spawn(|| assert_eq!(current_core(), None)).join().unwrap();
    }

    #[test]
    fn guard_installs_and_restores() {
        std::thread::spawn(|| {
            let outer = CoreGuard::enter(3);
            assert_eq!(current_core(), Some(3));
            {
                let _inner = CoreGuard::enter(5);
                assert_eq!(current_core(), Some(5));
            }
            assert_eq!(current_core(), Some(3));
            assert_eq!(outer.block().core, 3);
            drop(outer);
            assert_eq!(current_core(), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn each_thread_has_its_own_block() {
        let handles: std::vec::Vec<_> = (0..4)
            .map(|n| {
                std::thread::spawn(move || {
                    let _g = CoreGuard::enter(n);
                    for _ in 0..1000 {
                        assert_eq!(current_core(), Some(n));
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
