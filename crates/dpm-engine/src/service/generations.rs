//! Reloads of the startup file as the process-wide registries see them (servers,
//! services, filters, monitors, proxy-held users, listener limits, the login throttle).
//!
//! A reload (`crate::control::reload`) runs the new file on every worker while the old
//! one keeps serving, then switches every worker at once, or, if any worker failed,
//! forgets the new file. While it loads, [`loading`] is true: a definition equal to the
//! one in force gives the object in force back (a monitor keeps running, a server keeps
//! its state), a different one makes a new object that takes effect at [`commit_load`].
//!
//! Each registry is a [`Registry`]: the objects in force by name and, while a reload
//! loads, the generation its file is defining (objects kept from those in force, and new
//! ones). Readers (`services()`, the admin API, sessions starting) see only the objects
//! in force until [`commit_load`] makes the new generation the one in force; objects it
//! did not keep leave the registry (sessions holding them keep them alive) and are
//! retired (a monitor is stopped). [`abort_load`] forgets the new generation and retires
//! what it made. Outside a reload a definition goes straight to the objects in force, the
//! first one making the object and the later ones (other workers', which run the same
//! file) getting it back.
//!
//! Registries that are not a name → object map (the login throttle) implement
//! [`Reloadable`] themselves and [`follow_reloads`].

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// True while a reload's startup file runs.
static LOADING: AtomicBool = AtomicBool::new(false);

/// True while a reload's startup file runs on the workers.
pub fn loading() -> bool {
    LOADING.load(Ordering::Acquire)
}

/// A reload's startup file is about to run on every worker.
pub fn begin_load() {
    LOADING.store(true, Ordering::Release);
}

/// Every worker loaded the new file and switched to it: what it defined is now in force,
/// and what it did not define leaves every registry. Called when no startup file runs.
pub fn commit_load() {
    for registry in followers() {
        registry.commit();
    }
    LOADING.store(false, Ordering::Release);
}

/// A worker failed to load the new file: what the load defined is forgotten (monitors it
/// started are stopped) and the registries are as before it. Called when no startup file
/// runs.
pub fn abort_load() {
    for registry in followers() {
        registry.abort();
    }
    LOADING.store(false, Ordering::Release);
}

/// A process-wide registry's side of a reload's end.
pub trait Reloadable: Sync {
    /// The generation the load defined becomes the one in force.
    fn commit(&self);
    /// The generation the load defined is forgotten.
    fn abort(&self);
}

/// Every registry that has had a definition, in the order of their first one.
static FOLLOWERS: Mutex<Vec<&'static dyn Reloadable>> = Mutex::new(Vec::new());

/// `registry` is told of every reload's end from now on. Once per registry: a registry
/// that has never had a definition has nothing to switch.
pub fn follow_reloads(registry: &'static dyn Reloadable) {
    FOLLOWERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(registry);
}

fn followers() -> Vec<&'static dyn Reloadable> {
    FOLLOWERS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Process-wide objects by key (a name, by default), across reloads (see the module
/// docs). Meant for a `static`: its first definition makes it follow reloads.
pub struct Registry<T, K = String> {
    /// Read by every worker (users at each accept), written by definitions.
    generations: RwLock<Generations<T, K>>,
    following: Once,
    /// What happens to an object that leaves (a monitor is stopped).
    retire: Option<fn(&T)>,
}

struct Generations<T, K> {
    in_force: BTreeMap<K, T>,
    /// While a reload loads: what its file has defined so far.
    loaded: Option<BTreeMap<K, Loaded<T>>>,
}

struct Loaded<T> {
    value: T,
    /// The object in force under the same key, kept: it does not leave at the commit.
    kept: bool,
}

impl<T, K> Default for Registry<T, K> {
    fn default() -> Self {
        Registry::new()
    }
}

impl<T, K> Registry<T, K> {
    /// An empty registry whose objects need nothing when they leave.
    pub const fn new() -> Self {
        Registry {
            generations: RwLock::new(Generations {
                in_force: BTreeMap::new(),
                loaded: None,
            }),
            following: Once::new(),
            retire: None,
        }
    }

    /// An empty registry that calls `retire` on each object that leaves it: replaced or
    /// dropped by a reload, or made by a reload that failed.
    pub const fn retiring(retire: fn(&T)) -> Self {
        let mut registry = Registry::new();
        registry.retire = Some(retire);
        registry
    }

    fn read(&self) -> RwLockReadGuard<'_, Generations<T, K>> {
        self.generations.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Generations<T, K>> {
        self.generations.write().unwrap_or_else(|e| e.into_inner())
    }

    fn retire_all(&self, objects: Vec<T>) {
        if let Some(retire) = self.retire {
            objects.iter().for_each(retire);
        }
    }
}

impl<T: Clone + Send + Sync + 'static, K: Ord + Clone + Send + Sync + 'static> Registry<T, K> {
    /// The object of `key` in the generation being defined (the reload's while one
    /// loads): the one already there if `same` accepts it (its error otherwise: two
    /// definitions under one key), else — in a reload — the one in force if `same`
    /// accepts it, else a new one from `make`, which is given the one in force under the
    /// key, if any (to carry a count over). `make` runs under the registry's lock: two
    /// workers never make the same object.
    pub fn define(
        &'static self,
        key: K,
        same: impl Fn(&T) -> Result<(), String>,
        make: impl FnOnce(Option<&T>) -> Result<T, String>,
    ) -> Result<T, String> {
        let loading = loading();
        let mut generations = self.follow();
        if let Some(found) = generations.existing(&key, &same, loading) {
            return found;
        }
        let made = make(generations.in_force.get(&key))?;
        generations.insert(key, made.clone(), loading);
        Ok(made)
    }

    /// [`Registry::define`] without making anything: the object it would return, or
    /// `None` when it would make one. For an object too slow to make under the lock:
    /// make it, then `define` it (a worker that lost the race gets the winner's).
    pub fn existing(
        &'static self,
        key: &K,
        same: impl Fn(&T) -> Result<(), String>,
    ) -> Option<Result<T, String>> {
        let loading = loading();
        self.follow().existing(key, &same, loading)
    }

    /// The object in force under `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<T>
    where
        K: Borrow<Q>,
    {
        self.read().in_force.get(key).cloned()
    }

    /// The object under `key` in the generation being defined: the reload's while one
    /// loads (what its file defined so far), else the one in force.
    pub fn defined<Q: Ord + ?Sized>(&self, key: &Q) -> Option<T>
    where
        K: Borrow<Q>,
    {
        let generations = self.read();
        match (loading(), &generations.loaded) {
            (false, _) => generations.in_force.get(key).cloned(),
            (true, Some(loaded)) => loaded.get(key).map(|l| l.value.clone()),
            (true, None) => None,
        }
    }

    /// The objects in force, by key.
    pub fn values(&self) -> Vec<T> {
        self.read().in_force.values().cloned().collect()
    }

    /// `read` of the objects in force (under the read lock: keep it short).
    pub fn with_in_force<R>(&self, read: impl FnOnce(&BTreeMap<K, T>) -> R) -> R {
        read(&self.read().in_force)
    }

    /// The lock to define with, once the registry follows reloads.
    fn follow(&'static self) -> RwLockWriteGuard<'static, Generations<T, K>> {
        self.following.call_once(|| follow_reloads(self));
        self.write()
    }
}

impl<T: Clone, K: Ord + Clone> Generations<T, K> {
    /// What [`Registry::define`] returns without making anything (see there).
    fn existing(
        &mut self,
        key: &K,
        same: &dyn Fn(&T) -> Result<(), String>,
        loading: bool,
    ) -> Option<Result<T, String>> {
        let checked = |value: &T| same(value).map(|()| value.clone());
        if !loading {
            return self.in_force.get(key).map(checked);
        }
        let loaded = self.loaded.get_or_insert_with(BTreeMap::new);
        if let Some(defined) = loaded.get(key) {
            return Some(checked(&defined.value));
        }
        let kept = self.in_force.get(key).filter(|v| same(v).is_ok())?.clone();
        let entry = Loaded {
            value: kept.clone(),
            kept: true,
        };
        loaded.insert(key.clone(), entry);
        Some(Ok(kept))
    }

    fn insert(&mut self, key: K, value: T, loading: bool) {
        if loading {
            let loaded = self.loaded.get_or_insert_with(BTreeMap::new);
            loaded.insert(key, Loaded { value, kept: false });
        } else {
            self.in_force.insert(key, value);
        }
    }
}

impl<T: Send + Sync, K: Ord + Send + Sync> Reloadable for Registry<T, K> {
    fn commit(&self) {
        let left = {
            let mut generations = self.write();
            // No definition in the load: the new file defines nothing here.
            let loaded = generations.loaded.take().unwrap_or_default();
            let before = std::mem::take(&mut generations.in_force);
            let kept = |k: &K| loaded.get(k).is_some_and(|l| l.kept);
            let left = before.into_iter().filter(|(k, _)| !kept(k));
            let left: Vec<T> = left.map(|(_, v)| v).collect();
            generations.in_force = loaded.into_iter().map(|(k, l)| (k, l.value)).collect();
            left
        };
        self.retire_all(left);
    }

    fn abort(&self) {
        let loaded = self.write().loaded.take().unwrap_or_default();
        let made = loaded.into_values().filter(|l| !l.kept).map(|l| l.value);
        self.retire_all(made.collect());
    }
}

/// Serializes the tests that define in process-wide registries or run loads: the
/// loading flag is one for the whole test process.
#[cfg(test)]
pub(crate) fn serial_test() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// What left the test registry (every test's: each looks at its own keys' objects,
    /// which start with the key).
    static RETIRED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    static REGISTRY: Registry<Arc<String>> =
        Registry::retiring(|s| RETIRED.lock().unwrap().push(s.to_string()));

    /// Defines `key` as the object "`key` `text`": the same text is the same object.
    fn define(key: &str, text: &str) -> Result<Arc<String>, String> {
        let object = format!("{key} {text}");
        let same = |s: &Arc<String>| match **s == object {
            true => Ok(()),
            false => Err(format!("already {s}")),
        };
        REGISTRY.define(key.into(), same, |_| Ok(Arc::new(object.clone())))
    }

    /// What left the registry of the keys starting with `prefix`, sorted.
    fn retired(prefix: &str) -> Vec<String> {
        let mut all = RETIRED.lock().unwrap();
        let (mine, others) = all.drain(..).partition(|s| s.starts_with(prefix));
        *all = others;
        let mut mine: Vec<String> = mine;
        mine.sort();
        mine
    }

    #[test]
    fn a_reload_keeps_equal_objects_replaces_others_and_drops_the_rest() {
        let _serial = serial_test();
        let kept = define("g-kept", "a").unwrap();
        let replaced = define("g-replaced", "a").unwrap();
        define("g-dropped", "a").unwrap();
        // Outside a reload a second definition is another worker's: it must be the same.
        assert!(Arc::ptr_eq(&define("g-kept", "a").unwrap(), &kept));
        assert_eq!(define("g-kept", "b").unwrap_err(), "already g-kept a");

        begin_load();
        assert!(Arc::ptr_eq(&define("g-kept", "a").unwrap(), &kept));
        let new = define("g-replaced", "b").unwrap();
        assert!(!Arc::ptr_eq(&new, &replaced));
        // Other workers' definitions in the same load must agree with the first.
        assert!(Arc::ptr_eq(&define("g-replaced", "b").unwrap(), &new));
        assert_eq!(
            define("g-replaced", "c").unwrap_err(),
            "already g-replaced b"
        );
        define("g-added", "a").unwrap();
        // Readers see the objects in force while the load runs.
        assert!(Arc::ptr_eq(&REGISTRY.get("g-replaced").unwrap(), &replaced));
        assert!(REGISTRY.get("g-added").is_none());
        assert!(REGISTRY.get("g-dropped").is_some());
        assert!(REGISTRY.defined("g-added").is_some());
        assert!(REGISTRY.defined("g-dropped").is_none());
        assert!(retired("g-").is_empty());
        commit_load();

        assert!(!loading());
        assert!(Arc::ptr_eq(&REGISTRY.get("g-kept").unwrap(), &kept));
        assert!(Arc::ptr_eq(&REGISTRY.get("g-replaced").unwrap(), &new));
        assert!(REGISTRY.get("g-added").is_some());
        assert!(REGISTRY.get("g-dropped").is_none());
        assert_eq!(retired("g-"), ["g-dropped a", "g-replaced a"]);
    }

    #[test]
    fn an_aborted_reload_leaves_the_registry_as_it_was() {
        let _serial = serial_test();
        let kept = define("a-kept", "a").unwrap();
        let replaced = define("a-replaced", "a").unwrap();

        begin_load();
        define("a-kept", "a").unwrap();
        define("a-replaced", "b").unwrap();
        define("a-added", "c").unwrap();
        abort_load();

        assert!(Arc::ptr_eq(&REGISTRY.get("a-kept").unwrap(), &kept));
        assert!(Arc::ptr_eq(&REGISTRY.get("a-replaced").unwrap(), &replaced));
        assert!(REGISTRY.get("a-added").is_none());
        // What the load made is retired; what it kept is not.
        assert_eq!(retired("a-"), ["a-added c", "a-replaced b"]);
        // The next reload starts from the objects in force.
        begin_load();
        assert!(Arc::ptr_eq(&define("a-replaced", "a").unwrap(), &replaced));
        abort_load();
        assert!(retired("a-").is_empty());
    }

    #[test]
    fn a_new_object_is_made_knowing_the_one_it_replaces() {
        let _serial = serial_test();
        static COUNTS: Registry<(u32, Arc<()>)> = Registry::new();
        let define = |max: u32| {
            let same = |(m, _): &(u32, Arc<()>)| match *m == max {
                true => Ok(()),
                false => Err("other".to_string()),
            };
            COUNTS.define("n-count".into(), same, |before| {
                Ok((
                    max,
                    before.map_or_else(Default::default, |(_, c)| c.clone()),
                ))
            })
        };
        let (_, first) = define(1).unwrap();
        begin_load();
        let (_, second) = define(2).unwrap();
        commit_load();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(COUNTS.get("n-count").unwrap().0, 2);
    }
}
