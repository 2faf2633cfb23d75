//! Callback tables: a connection's own callbacks, package callback objects
//! (`dpm.new_callback()`) overlaid with `conn:package_register`, the lookup rule and the
//! event mask handed to the engine.
//!
//! Callbacks are kept by DPM [`State`] number; the mask is the engine events of the
//! registered states ([`State::mask`]), and the host looks a callback up by the state of
//! the engine event that fired ([`State::of`]).
//!
//! Lookup (reference §6.2, the original's code rather than its doc): if a package is
//! applied and has a function for the state, it runs; otherwise the connection's own
//! function runs. Exception: at `MY_CLOSING` the connection's own function always wins,
//! so the owner can clean up even while a package drives the connection.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use dpm_engine::{ConnId, EventMask};
use mlua::{Function, Lua, UserData, UserDataMethods, Value};

use crate::dpm_events::State;
use crate::errors::raise;

/// One function slot per state.
#[derive(Default, Clone)]
pub struct Slots {
    funcs: HashMap<u8, Function>,
}

impl Slots {
    /// The function registered for `state`.
    pub fn get(&self, state: State) -> Option<&Function> {
        self.funcs.get(&state.0)
    }

    /// Sets or clears the function of `state`.
    pub fn set(&mut self, state: State, func: Option<Function>) {
        match func {
            Some(f) => {
                self.funcs.insert(state.0, f);
            }
            None => {
                self.funcs.remove(&state.0);
            }
        }
    }

    /// The engine events of the states with a function.
    pub fn mask(&self) -> EventMask {
        EventMask(self.funcs.keys().fold(0, |m, &s| m | State(s).mask().0))
    }
}

/// Validates the arguments of `register(state, fn|nil)`: `None` (do nothing) with fewer
/// than two arguments, as the original.
pub fn parse_register_args(
    lua: &Lua,
    args: mlua::MultiValue,
) -> mlua::Result<Option<(State, Option<Function>)>> {
    if args.len() < 2 {
        return Ok(None);
    }
    let mut args = args.into_iter();
    let state = match args.next() {
        Some(Value::Integer(n)) => n,
        Some(Value::Number(n)) if n.fract() == 0.0 => n as i64,
        _ => {
            return Err(raise(
                lua,
                "Callback state must be an integer (a dpm.MY* constant)",
            ))
        }
    };
    if !(0..State::SLOTS as i64).contains(&state) {
        return Err(raise(
            lua,
            format!("Invalid callback state number {state}!"),
        ));
    }
    let func = match args.next() {
        Some(Value::Nil) | None => None,
        Some(Value::Function(f)) => Some(f),
        Some(_) => {
            return Err(raise(
                lua,
                "Argument for callback must be a function or nil",
            ))
        }
    };
    Ok(Some((State(state as u8), func)))
}

/// A package callback object's shared state: its slots and the connections it is applied to.
#[derive(Default)]
pub struct Package {
    /// The package's functions.
    pub slots: Slots,
    /// Connections that currently have this package applied (their masks follow it).
    pub applied_to: HashSet<ConnId>,
}

/// The `dpm.callback` userdata.
#[derive(Clone)]
pub struct PackageObject {
    /// Shared with every connection it is applied to.
    pub package: Rc<RefCell<Package>>,
    /// Where masks are recomputed when the package changes.
    pub registry: Rc<CallbackRegistry>,
}

impl UserData for PackageObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.callback");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("register", |lua, this, args: mlua::MultiValue| {
            let Some((state, func)) = parse_register_args(lua, args)? else {
                return Ok(());
            };
            this.package.borrow_mut().slots.set(state, func);
            let applied: Vec<ConnId> = this.package.borrow().applied_to.iter().copied().collect();
            for id in applied {
                this.registry.refresh_mask(id);
            }
            Ok(())
        });
    }
}

/// The callbacks of one connection.
#[derive(Default)]
struct ConnCallbacks {
    own: Slots,
    package: Option<Rc<RefCell<Package>>>,
}

impl ConnCallbacks {
    fn mask(&self) -> EventMask {
        let package = self
            .package
            .as_ref()
            .map_or(0, |p| p.borrow().slots.mask().0);
        EventMask(self.own.mask().0 | package)
    }
}

/// Every connection's callbacks on one worker; keeps the engine's masks in step.
pub struct CallbackRegistry {
    worker: dpm_engine::Worker,
    conns: RefCell<HashMap<ConnId, ConnCallbacks>>,
}

impl CallbackRegistry {
    /// An empty registry for `worker`.
    pub fn new(worker: dpm_engine::Worker) -> CallbackRegistry {
        CallbackRegistry {
            worker,
            conns: RefCell::new(HashMap::new()),
        }
    }

    /// `conn:register(state, fn|nil)`.
    pub fn register(&self, id: ConnId, state: State, func: Option<Function>) {
        self.conns
            .borrow_mut()
            .entry(id)
            .or_default()
            .own
            .set(state, func);
        self.refresh_mask(id);
    }

    /// `conn:package_register(obj|nil)`.
    pub fn apply_package(&self, id: ConnId, package: Option<Rc<RefCell<Package>>>) {
        let mut conns = self.conns.borrow_mut();
        let entry = conns.entry(id).or_default();
        if let Some(old) = entry.package.take() {
            old.borrow_mut().applied_to.remove(&id);
        }
        if let Some(new) = &package {
            new.borrow_mut().applied_to.insert(id);
        }
        entry.package = package;
        drop(conns);
        self.refresh_mask(id);
    }

    /// Recomputes the engine's mask of `id`.
    pub fn refresh_mask(&self, id: ConnId) {
        let mask = self
            .conns
            .borrow()
            .get(&id)
            .map(ConnCallbacks::mask)
            .unwrap_or_default();
        self.worker.set_event_mask(id, mask);
    }

    /// The function to run for `state` on `id` (see the module docs for the rule).
    pub fn lookup(&self, id: ConnId, state: State) -> Option<Function> {
        let conns = self.conns.borrow();
        let entry = conns.get(&id)?;
        if state == State::MY_CLOSING {
            if let Some(own) = entry.own.get(state) {
                return Some(own.clone());
            }
        }
        if let Some(package) = &entry.package {
            if let Some(f) = package.borrow().slots.get(state) {
                return Some(f.clone());
            }
        }
        entry.own.get(state).cloned()
    }

    /// Forgets every callback (a retired state's: `crate::host`).
    pub fn clear(&self) {
        self.conns.borrow_mut().clear();
    }

    /// Forgets a closed connection's callbacks.
    pub fn forget(&self, id: ConnId) {
        if let Some(entry) = self.conns.borrow_mut().remove(&id) {
            if let Some(package) = entry.package {
                package.borrow_mut().applied_to.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpm_engine::Event;

    fn func(lua: &Lua, tag: &str) -> Function {
        lua.load(format!("return function() return '{tag}' end"))
            .eval()
            .unwrap()
    }

    fn tag_of(f: Option<Function>) -> Option<String> {
        f.map(|f| f.call::<String>(()).unwrap())
    }

    #[test]
    fn package_overlay_falls_back_to_own_callbacks_and_own_closing_wins() {
        let lua = Lua::new();
        let registry = CallbackRegistry::new(dpm_engine::Worker::new(0, Default::default()));
        let conn = 7;
        registry.register(conn, State::MYC_SENT_CMD, Some(func(&lua, "own cmd")));
        registry.register(conn, State::MY_CLOSING, Some(func(&lua, "own closing")));
        registry.register(conn, State::MYC_WAITING, Some(func(&lua, "own waiting")));

        let package = Rc::new(RefCell::new(Package::default()));
        package
            .borrow_mut()
            .slots
            .set(State::MYC_SENT_CMD, Some(func(&lua, "package cmd")));
        package
            .borrow_mut()
            .slots
            .set(State::MY_CLOSING, Some(func(&lua, "package closing")));
        package
            .borrow_mut()
            .slots
            .set(State::MYS_WAIT_CMD, Some(func(&lua, "package wait")));
        registry.apply_package(conn, Some(package.clone()));

        // The package wins where it has a function …
        assert_eq!(
            tag_of(registry.lookup(conn, State::MYC_SENT_CMD)).as_deref(),
            Some("package cmd")
        );
        assert_eq!(
            tag_of(registry.lookup(conn, State::MYS_WAIT_CMD)).as_deref(),
            Some("package wait")
        );
        // … the connection's own function runs where it has none (the code's rule, not the doc's) …
        assert_eq!(
            tag_of(registry.lookup(conn, State::MYC_WAITING)).as_deref(),
            Some("own waiting")
        );
        // … and the owner's MY_CLOSING always wins.
        assert_eq!(
            tag_of(registry.lookup(conn, State::MY_CLOSING)).as_deref(),
            Some("own closing")
        );
        assert!(package.borrow().applied_to.contains(&conn));

        // Removing the overlay restores the connection's own callbacks.
        registry.apply_package(conn, None);
        assert_eq!(
            tag_of(registry.lookup(conn, State::MYC_SENT_CMD)).as_deref(),
            Some("own cmd")
        );
        assert_eq!(tag_of(registry.lookup(conn, State::MYS_WAIT_CMD)), None);
        assert!(package.borrow().applied_to.is_empty());

        // Without its own MY_CLOSING, the package's runs.
        registry.register(conn, State::MY_CLOSING, None);
        registry.apply_package(conn, Some(package));
        assert_eq!(
            tag_of(registry.lookup(conn, State::MY_CLOSING)).as_deref(),
            Some("package closing")
        );
    }

    #[test]
    fn masks_follow_registrations_and_packages() {
        let lua = Lua::new();
        let mut slots = Slots::default();
        assert_eq!(slots.mask(), EventMask(0));
        slots.set(State::MYC_SENT_CMD, Some(func(&lua, "x")));
        slots.set(State::MY_CLOSING, Some(func(&lua, "y")));
        assert!(slots.mask().has(Event::ClientSentCommand) && slots.mask().has(Event::Closing));
        assert!(!slots.mask().has(Event::ResponseEnded));
        slots.set(State::MYC_SENT_CMD, None);
        assert!(!slots.mask().has(Event::ClientSentCommand));
    }
}
