//! Elastic Building Blocks: system-wide objects with a representative per core.
//!
//! After EbbRT (OSDI 2016, section 3.2): every Ebb is named by an [`EbbId`]. An [`EbbRef`] is just
//! that id; calling through it finds the calling core's *representative* (rep) in a per-core
//! translation table, one slot per id. The fast path is one load of the core block (a
//! thread-pointer-relative `mov`, see [`percore`](crate::percore)), one load of the slot and a
//! predictable branch on null. A miss takes the slow path, [`EbbRef::fault`], which consults the
//! Ebb's *binding* in the local id map and either hands back the one shared rep, builds a rep for
//! this core, or calls the type's own fault handler; the result is cached in the slot so the
//! next call is fast.
//!
//! Kinds, as EbbRT has them:
//!
//! - **shared**: one rep used by every core ([`create_shared`]); the type must be `Sync`.
//! - **multicore**: one rep per core built on first use from a shared root ([`MulticoreEbb`],
//!   [`create_multicore`]); reps need not be `Sync` since each is touched only by its core.
//! - **static**: well-known ids below [`FIRST_DYNAMIC_ID`] whose reps the platform installs on
//!   each core at start ([`bind_static`], [`install_local`]); a miss is a bug and panics.
//! - **custom**: the type's own [`EbbFault`] handler decides ([`bind_custom`]).
//!
//! Reps can be replaced at run time ([`rebind_shared`], [`rebind_multicore`], [`swap_local`]).
//! The old rep is handed back, not freed: a core may still be using it in the event it is
//! running, and Rust references to reps are `'static`. Ids shared across nodes go through a
//! [`GlobalIdMap`]; [`LocalGlobalIdMap`] is the single-node implementation.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::any::{type_name, TypeId};
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crate::percore::{self, CoreBlock, CoreId, MAX_CORES};

/// Slots in every core's translation table; ids are below this.
pub const MAX_EBBS: usize = 4096;

/// Ids below this are static, well-known ids; [`EbbId::allocate`] hands out the rest.
pub const FIRST_DYNAMIC_ID: u32 = 256;

/// The system-wide name of an Ebb: an index into every core's translation table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EbbId(u32);

impl EbbId {
    /// A static, well-known id (`1 <= n < FIRST_DYNAMIC_ID`); id 0 is never valid.
    pub const fn static_id(n: u32) -> EbbId {
        assert!(n != 0 && n < FIRST_DYNAMIC_ID, "static Ebb ids are 1..FIRST_DYNAMIC_ID");
        EbbId(n)
    }

    /// Allocates a fresh dynamic id, or `None` when all [`MAX_EBBS`] are in use.
    pub fn allocate() -> Option<EbbId> {
        static NEXT: AtomicU32 = AtomicU32::new(FIRST_DYNAMIC_ID);
        let n = NEXT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                ((n as usize) < MAX_EBBS).then_some(n + 1)
            })
            .ok()?;
        Some(EbbId(n))
    }

    /// The id as a table index.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The raw number.
    pub const fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for EbbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EbbId({})", self.0)
    }
}

impl fmt::Display for EbbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The well-known ids of the Ebbs the runtime itself provides.
pub mod well_known {
    use super::EbbId;
    /// Reserved for tests and benchmarks that need a fixed static id.
    pub const TEST: EbbId = EbbId::static_id(255);
}

/// One core's translation table: a representative pointer per [`EbbId`].
///
/// The owning core reads and fills its slots; other cores only clear them (to invalidate a rep
/// after a rebind), so the slots are atomics read with `Relaxed` ordering, which is a plain load.
pub struct EbbTable {
    slots: [AtomicPtr<()>; MAX_EBBS],
}

impl EbbTable {
    /// An empty table.
    pub fn new() -> Self {
        EbbTable { slots: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_EBBS] }
    }

    #[inline(always)]
    fn slot(&self, id: EbbId) -> &AtomicPtr<()> {
        // SAFETY: every EbbId is below MAX_EBBS: static ids by `static_id`'s assertion, dynamic
        // ones by `allocate`'s bound, and the field is private.
        unsafe { self.slots.get_unchecked(id.index()) }
    }
}

impl Default for EbbTable {
    fn default() -> Self {
        Self::new()
    }
}

/// A reference to an Ebb whose representatives have type `T`.
///
/// It is only an id, so it is `Copy`, `Send` and `Sync` whatever `T` is, and can live in a
/// `static`. Resolving it ([`get`](Self::get) or `*`) must happen on a cairn core.
#[repr(transparent)]
pub struct EbbRef<T: 'static> {
    id: EbbId,
    _rep: PhantomData<fn() -> T>,
}

impl<T: 'static> Clone for EbbRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: 'static> Copy for EbbRef<T> {}

impl<T: 'static> fmt::Debug for EbbRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EbbRef<{}>({})", type_name::<T>(), self.id)
    }
}

impl<T: 'static> EbbRef<T> {
    /// A reference to the Ebb named `id`. The binding's type is checked on the first fault.
    pub const fn new(id: EbbId) -> Self {
        EbbRef { id, _rep: PhantomData }
    }

    /// The Ebb's id.
    pub const fn id(&self) -> EbbId {
        self.id
    }

    /// The calling core's representative: the translation fast path.
    ///
    /// # Panics
    ///
    /// Off a cairn core, or when the id has no binding of type `T`.
    #[inline(always)]
    pub fn get(&self) -> &T {
        let block = percore::current();
        if !block.is_null() {
            // SAFETY: a non-null block is installed and outlives its installation.
            let rep = unsafe { (*block).ebbs.slot(self.id).load(Ordering::Relaxed) };
            if !rep.is_null() {
                // SAFETY: only `fault` and the binding functions store into a slot, always a
                // `&'static T` of the type the binding was checked against.
                return unsafe { &*(rep as *const T) };
            }
        }
        self.fault()
    }

    /// Like [`get`](Self::get), but `None` off a cairn core instead of a panic.
    pub fn try_get(&self) -> Option<&T> {
        percore::current_block().map(|_| self.get())
    }

    /// The slow path: resolve the binding, build or find this core's rep, cache it.
    #[cold]
    #[inline(never)]
    pub fn fault(&self) -> &T {
        let block = percore::current_block()
            .unwrap_or_else(|| panic!("{self:?} used on a thread that is not a cairn core"));
        resolve::<T>(self.id, block)
    }
}

impl<T: 'static> Deref for EbbRef<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        self.get()
    }
}

/// An Ebb type with its own fault handler, for [`bind_custom`]: EbbRT's type-specific
/// `HandleFault`.
pub trait EbbFault: 'static {
    /// Builds or finds the representative for `core`. The runtime caches the result.
    fn handle_fault(id: EbbId, core: CoreId) -> &'static Self;
}

/// A multicore Ebb: one representative per core, built on first use on that core from a root
/// shared by all of them (EbbRT's `MulticoreEbb`).
pub trait MulticoreEbb: Sized + 'static {
    /// What every rep is built from; shared by all cores.
    type Root: Send + Sync + 'static;
    /// Builds the rep for `core`. Runs on `core`, on the first use of the Ebb there.
    fn create_rep(root: &'static Self::Root, core: CoreId) -> Self;
}

#[derive(Clone, Copy)]
enum Kind {
    Shared(*const ()),
    Multicore {
        root: *const (),
        make_rep: unsafe fn(*const (), CoreId) -> *const (),
        reps: &'static [AtomicPtr<()>],
    },
    Static,
    Custom(fn(EbbId, CoreId) -> *const ()),
}

#[derive(Clone, Copy)]
struct Binding {
    type_id: TypeId,
    type_name: &'static str,
    generation: u64,
    kind: Kind,
}

/// The local id map: every Ebb's binding, and every installed core block (for invalidation).
struct LocalIdMap {
    bindings: BTreeMap<EbbId, Binding>,
    generation: u64,
    blocks: Vec<usize>,
}

// SAFETY: the raw pointers inside bindings are `&'static` reps or roots whose types were
// required `Send + Sync` (shared reps, multicore roots) when bound, or multicore reps that are
// only dereferenced on the core that built them; block addresses are only used to clear atomic
// slots. So moving the map between threads, or reading it from several, shares nothing unsafely.
unsafe impl Send for LocalIdMap {}
// SAFETY: as above.
unsafe impl Sync for LocalIdMap {}

static LOCAL_ID_MAP: spin::RwLock<LocalIdMap> =
    spin::RwLock::new(LocalIdMap { bindings: BTreeMap::new(), generation: 0, blocks: Vec::new() });

/// Records that `block` is installed on some thread, so rebinding can invalidate its table.
pub(crate) fn register_block(block: *const CoreBlock) {
    LOCAL_ID_MAP.write().blocks.push(block as usize);
}

/// Forgets `block` (it is being uninstalled).
pub(crate) fn unregister_block(block: *const CoreBlock) {
    let mut map = LOCAL_ID_MAP.write();
    if let Some(i) = map.blocks.iter().position(|&b| b == block as usize) {
        map.blocks.swap_remove(i);
    }
}

fn bind<T: 'static>(id: EbbId, kind: Kind) -> Option<Binding> {
    let mut map = LOCAL_ID_MAP.write();
    map.generation += 1;
    let binding = Binding {
        type_id: TypeId::of::<T>(),
        type_name: type_name::<T>(),
        generation: map.generation,
        kind,
    };
    let old = map.bindings.insert(id, binding);
    if old.is_some() {
        // A rebind: clear every core's cached rep so each faults to the new binding. Done under
        // the write lock, so a concurrent fault (which stores under the read lock after
        // checking the generation) cannot re-cache the old rep afterwards.
        for &b in &map.blocks {
            // SAFETY: registered blocks are installed, hence live, until unregistered, which
            // takes this same lock.
            let block = unsafe { &*(b as *const CoreBlock) };
            block.ebbs.slot(id).store(ptr::null_mut(), Ordering::Relaxed);
        }
    }
    old
}

fn resolve<T: 'static>(id: EbbId, block: &CoreBlock) -> &'static T {
    let core = block.core;
    loop {
        let binding = LOCAL_ID_MAP.read().bindings.get(&id).copied();
        let Some(binding) = binding else {
            panic!("{id:?} has no binding (wanted a {})", type_name::<T>());
        };
        assert!(
            binding.type_id == TypeId::of::<T>(),
            "{id:?} is bound to a {}, not a {}",
            binding.type_name,
            type_name::<T>()
        );
        // Build outside the lock: a rep's constructor may create Ebbs of its own.
        let rep: *const () = match binding.kind {
            Kind::Shared(rep) => rep,
            Kind::Multicore { root, make_rep, reps } => {
                let existing = reps[core].load(Ordering::Acquire);
                if existing.is_null() {
                    // SAFETY: `make_rep` is `make_multicore_rep::<T>` and `root` its root.
                    let rep = unsafe { make_rep(root, core) };
                    reps[core].store(rep as *mut (), Ordering::Release);
                    rep
                } else {
                    existing
                }
            }
            Kind::Custom(handler) => handler(id, core),
            Kind::Static => {
                panic!("static {id:?} ({}) has no representative on core {core}", binding.type_name)
            }
        };
        let map = LOCAL_ID_MAP.read();
        if map.bindings.get(&id).map(|b| b.generation) == Some(binding.generation) {
            block.ebbs.slot(id).store(rep as *mut (), Ordering::Relaxed);
            // SAFETY: the binding was checked to hold `T` reps, which are `'static`.
            return unsafe { &*(rep as *const T) };
        }
        // Rebound while we were building: resolve again against the new binding.
    }
}

/// Binds `id` to one representative shared by every core.
pub fn bind_shared<T: Send + Sync + 'static>(id: EbbId, rep: &'static T) {
    bind::<T>(id, Kind::Shared(rep as *const T as *const ()));
}

/// Creates a shared Ebb with a fresh id whose one representative is `rep`.
///
/// # Panics
///
/// When all dynamic ids are in use.
pub fn create_shared<T: Send + Sync + 'static>(rep: T) -> EbbRef<T> {
    let id = EbbId::allocate().expect("out of Ebb ids");
    bind_shared(id, Box::leak(Box::new(rep)));
    EbbRef::new(id)
}

/// Replaces the shared rep of `id` on every core (hot swap). Returns the old rep, which stays
/// allocated: a core may still be using it in its current event.
pub fn rebind_shared<T: Send + Sync + 'static>(id: EbbId, rep: &'static T) -> Option<&'static T> {
    match bind::<T>(id, Kind::Shared(rep as *const T as *const ()))?.kind {
        // SAFETY: the old binding was bound with `T` (checked below against the type id).
        Kind::Shared(old) => Some(unsafe { &*(old as *const T) }),
        _ => None,
    }
}

unsafe fn make_multicore_rep<T: MulticoreEbb>(root: *const (), core: CoreId) -> *const () {
    // SAFETY: `root` came from `&'static T::Root` in `bind_multicore`.
    let root = unsafe { &*(root as *const T::Root) };
    Box::leak(Box::new(T::create_rep(root, core))) as *const T as *const ()
}

/// Binds `id` as a multicore Ebb whose reps are built from `root`.
pub fn bind_multicore<T: MulticoreEbb>(id: EbbId, root: &'static T::Root) {
    let reps: &'static [AtomicPtr<()>] =
        Box::leak((0..MAX_CORES).map(|_| AtomicPtr::new(ptr::null_mut())).collect());
    bind::<T>(
        id,
        Kind::Multicore {
            root: root as *const T::Root as *const (),
            make_rep: make_multicore_rep::<T>,
            reps,
        },
    );
}

/// Creates a multicore Ebb with a fresh id.
///
/// # Panics
///
/// When all dynamic ids are in use.
pub fn create_multicore<T: MulticoreEbb>(root: T::Root) -> EbbRef<T> {
    let id = EbbId::allocate().expect("out of Ebb ids");
    bind_multicore::<T>(id, Box::leak(Box::new(root)));
    EbbRef::new(id)
}

/// Replaces a multicore Ebb's root (hot swap): every core builds a new rep from `root` on its
/// next call. The old reps stay allocated.
pub fn rebind_multicore<T: MulticoreEbb>(id: EbbId, root: &'static T::Root) {
    bind_multicore::<T>(id, root);
}

/// Declares `id` a static Ebb of type `T`: each core installs its rep with [`install_local`]
/// when it starts, and a call on a core that has none panics.
pub fn bind_static<T: 'static>(id: EbbId) {
    bind::<T>(id, Kind::Static);
}

fn custom_trampoline<T: EbbFault>(id: EbbId, core: CoreId) -> *const () {
    T::handle_fault(id, core) as *const T as *const ()
}

/// Binds `id` to `T`'s own fault handler.
pub fn bind_custom<T: EbbFault>(id: EbbId) {
    bind::<T>(id, Kind::Custom(custom_trampoline::<T>));
}

/// Sets the calling core's rep of `id` to `rep`, returning the rep it replaces (a per-core hot
/// swap, or a static Ebb's installation). The id must be bound to `T`.
///
/// # Panics
///
/// Off a cairn core, or when `id` is not bound to a `T`.
pub fn install_local<T: 'static>(id: EbbId, rep: &'static T) -> Option<&'static T> {
    let block = percore::current_block().expect("install_local off a cairn core");
    let map = LOCAL_ID_MAP.read();
    let binding = map.bindings.get(&id).unwrap_or_else(|| panic!("{id:?} has no binding"));
    assert!(binding.type_id == TypeId::of::<T>(), "{id:?} is bound to a {}", binding.type_name);
    let old = block.ebbs.slot(id).swap(rep as *const T as *mut (), Ordering::Relaxed);
    // SAFETY: the slot only ever holds `&'static T` of the bound type.
    unsafe { (old as *const T).as_ref() }
}

/// Replaces the calling core's rep behind `ebb` with `rep` (hot swap on this core only) and
/// returns the old one, if this core had resolved one.
pub fn swap_local<T: 'static>(ebb: EbbRef<T>, rep: &'static T) -> Option<&'static T> {
    install_local(ebb.id(), rep)
}

/// Forgets the calling core's cached rep of `id`; the next call faults again.
pub fn invalidate_local(id: EbbId) {
    if let Some(block) = percore::current_block() {
        block.ebbs.slot(id).store(ptr::null_mut(), Ordering::Relaxed);
    }
}

/// Data stored for Ebb ids across the nodes of one application (EbbRT's `GlobalIdMap`): a
/// distributed Ebb keeps what its reps on other nodes need to find each other here.
///
/// Operations are asynchronous because a distributed implementation answers over the network.
pub trait GlobalIdMap {
    /// The data stored for `id`, if any.
    fn get(&self, id: EbbId) -> impl Future<Output = Option<Vec<u8>>>;
    /// Stores `data` for `id`, replacing what was there.
    fn set(&self, id: EbbId, data: Vec<u8>) -> impl Future<Output = ()>;
    /// Removes and returns the data stored for `id`.
    fn remove(&self, id: EbbId) -> impl Future<Output = Option<Vec<u8>>>;
}

/// The single-node [`GlobalIdMap`]: a map in this process's memory.
#[derive(Default)]
pub struct LocalGlobalIdMap {
    map: spin::Mutex<BTreeMap<EbbId, Vec<u8>>>,
}

impl LocalGlobalIdMap {
    /// An empty map.
    pub const fn new() -> Self {
        LocalGlobalIdMap { map: spin::Mutex::new(BTreeMap::new()) }
    }
}

impl GlobalIdMap for LocalGlobalIdMap {
    async fn get(&self, id: EbbId) -> Option<Vec<u8>> {
        self.map.lock().get(&id).cloned()
    }
    async fn set(&self, id: EbbId, data: Vec<u8>) {
        self.map.lock().insert(id, data);
    }
    async fn remove(&self, id: EbbId) -> Option<Vec<u8>> {
        self.map.lock().remove(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::percore::CoreGuard;
    use core::cell::Cell;
    use core::sync::atomic::AtomicUsize;
    use std::thread;

    struct Counter {
        core: CoreId,
        hits: Cell<u64>,
    }

    struct CounterRoot {
        built: AtomicUsize,
    }

    impl MulticoreEbb for Counter {
        type Root = CounterRoot;
        fn create_rep(root: &'static CounterRoot, core: CoreId) -> Self {
            root.built.fetch_add(1, Ordering::Relaxed);
            Counter { core, hits: Cell::new(0) }
        }
    }

    #[test]
    fn multicore_builds_one_rep_per_core_on_first_use() {
        let ebb = create_multicore::<Counter>(CounterRoot { built: AtomicUsize::new(0) });
        let handles: Vec<_> = (0..4)
            .map(|core| {
                thread::spawn(move || {
                    let _g = CoreGuard::enter(core);
                    for _ in 0..100 {
                        ebb.hits.set(ebb.hits.get() + 1);
                    }
                    assert_eq!(ebb.core, core);
                    assert_eq!(ebb.hits.get(), 100);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn shared_rep_is_the_same_everywhere_and_can_be_hot_swapped() {
        let ebb = create_shared(AtomicUsize::new(7));
        let first = thread::spawn(move || {
            let _g = CoreGuard::enter(0);
            ebb.fetch_add(1, Ordering::Relaxed);
            ebb.get() as *const AtomicUsize as usize
        })
        .join()
        .unwrap();
        let _g = CoreGuard::enter(1);
        assert_eq!(ebb.get() as *const AtomicUsize as usize, first);
        assert_eq!(ebb.load(Ordering::Relaxed), 8);

        let old = rebind_shared(ebb.id(), Box::leak(Box::new(AtomicUsize::new(100)))).unwrap();
        assert_eq!(old.load(Ordering::Relaxed), 8, "the old rep is handed back intact");
        assert_eq!(ebb.load(Ordering::Relaxed), 100, "this core's cached rep was invalidated");
    }

    #[test]
    fn hot_swap_while_other_cores_call_in_a_loop() {
        // Four cores call the Ebb in a loop while the main core rebinds it. Every value seen is
        // one of the bound reps, and after the swap every core sees the new one.
        let ebb = create_shared(AtomicUsize::new(1));
        let done = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
        let handles: Vec<_> = (0..4)
            .map(|core| {
                let done = done.clone();
                thread::spawn(move || {
                    let _g = CoreGuard::enter(core);
                    let mut saw_new = false;
                    while !done.load(Ordering::Acquire) || !saw_new {
                        let v = ebb.load(Ordering::Relaxed);
                        assert!(v == 1 || v == 2, "saw {v}");
                        saw_new |= v == 2;
                    }
                })
            })
            .collect();
        thread::sleep(std::time::Duration::from_millis(20));
        rebind_shared(ebb.id(), Box::leak(Box::new(AtomicUsize::new(2))));
        done.store(true, Ordering::Release);
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn multicore_rebind_rebuilds_reps() {
        static ROOT1: CounterRoot = CounterRoot { built: AtomicUsize::new(0) };
        static ROOT2: CounterRoot = CounterRoot { built: AtomicUsize::new(0) };
        let id = EbbId::allocate().unwrap();
        bind_multicore::<Counter>(id, &ROOT1);
        let ebb = EbbRef::<Counter>::new(id);
        let _g = CoreGuard::enter(2);
        ebb.hits.set(5);
        assert_eq!(ROOT1.built.load(Ordering::Relaxed), 1);
        rebind_multicore::<Counter>(id, &ROOT2);
        assert_eq!(ebb.hits.get(), 0, "a fresh rep after the swap");
        assert_eq!(ROOT2.built.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn per_core_swap_changes_only_this_core() {
        let ebb = create_shared(AtomicUsize::new(1));
        let _g = CoreGuard::enter(0);
        assert_eq!(ebb.load(Ordering::Relaxed), 1);
        let old = swap_local(ebb, Box::leak(Box::new(AtomicUsize::new(9)))).unwrap();
        assert_eq!(old.load(Ordering::Relaxed), 1);
        assert_eq!(ebb.load(Ordering::Relaxed), 9);
        thread::spawn(move || {
            let _g = CoreGuard::enter(1);
            assert_eq!(ebb.load(Ordering::Relaxed), 1, "other cores keep the bound rep");
        })
        .join()
        .unwrap();
    }

    struct Custom(CoreId);
    impl EbbFault for Custom {
        fn handle_fault(_id: EbbId, core: CoreId) -> &'static Self {
            Box::leak(Box::new(Custom(core * 10)))
        }
    }

    #[test]
    fn custom_fault_handler_runs_once_per_core() {
        let id = EbbId::allocate().unwrap();
        bind_custom::<Custom>(id);
        let ebb = EbbRef::<Custom>::new(id);
        let _g = CoreGuard::enter(4);
        let first = ebb.get() as *const Custom;
        assert_eq!(ebb.0, 40);
        assert_eq!(ebb.get() as *const Custom, first, "cached after the fault");
    }

    #[test]
    fn static_ebb_uses_installed_rep_and_panics_without_one() {
        let id = EbbId::allocate().unwrap();
        bind_static::<u64>(id);
        let ebb = EbbRef::<u64>::new(id);
        let _g = CoreGuard::enter(0);
        install_local(id, Box::leak(Box::new(77u64)));
        assert_eq!(*ebb, 77);
        let other = thread::spawn(move || {
            let _g = CoreGuard::enter(1);
            *ebb
        })
        .join();
        assert!(other.is_err(), "a core without the static rep must fault loudly");
    }

    #[test]
    fn wrong_type_and_off_core_use_panic() {
        let ebb = create_shared(5u32);
        let wrong = EbbRef::<u64>::new(ebb.id());
        assert!(thread::spawn(move || *ebb).join().is_err(), "off-core use panics");
        assert!(
            thread::spawn(move || {
                let _g = CoreGuard::enter(0);
                *wrong
            })
            .join()
            .is_err(),
            "a type mismatch panics"
        );
        assert!(thread::spawn(move || ebb.try_get().copied()).join().unwrap().is_none());
    }

    #[test]
    fn ids_are_unique_and_bounded() {
        let a = EbbId::allocate().unwrap();
        let b = EbbId::allocate().unwrap();
        assert_ne!(a, b);
        assert!(a.as_u32() >= FIRST_DYNAMIC_ID && b.index() < MAX_EBBS);
    }

    #[test]
    fn local_global_id_map_round_trips() {
        let map = LocalGlobalIdMap::new();
        let id = EbbId::allocate().unwrap();
        crate::event::block_on_ready(async {
            assert_eq!(map.get(id).await, None);
            map.set(id, b"node-1:port".to_vec()).await;
            assert_eq!(map.get(id).await.as_deref(), Some(&b"node-1:port"[..]));
            assert_eq!(map.remove(id).await.as_deref(), Some(&b"node-1:port"[..]));
            assert_eq!(map.get(id).await, None);
        });
    }
}
