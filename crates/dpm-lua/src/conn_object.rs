//! The `dpm.conn` userdata: a script's handle on a listener, client or backend.
//!
//! There is exactly one such object per connection (made by `dpm.listener*`,
//! `dpm.connect*` or handed to `MYC_CONNECT`); callbacks receive ids, not objects.
//! When the object is garbage-collected while its connection is open, the connection
//! is closed, as in the original: scripts keep references to what they want alive.

use std::rc::Rc;

use dpm_engine::{ConnId, Role};
use mlua::{AnyUserData, UserData, UserDataMethods, Value};

use crate::callbacks::{parse_register_args, PackageObject};
use crate::constants::{MY_CLIENT, MY_SERVER};
use crate::errors::raise;
use crate::host::Host;

/// A script's handle on one connection.
pub struct ConnObject {
    /// The connection's id.
    pub id: ConnId,
    /// Its kind, fixed at creation.
    pub role: Role,
    pub(crate) host: Rc<Host>,
}

impl Drop for ConnObject {
    fn drop(&mut self) {
        if !self.host.worker.is_alive(self.id) {
            self.host.callbacks.forget(self.id);
            self.host.worker.forget(self.id);
        } else {
            // Closing runs callbacks: never from inside the garbage collector.
            let host = self.host.clone();
            let id = self.id;
            tokio::task::spawn_local(async move {
                host.worker.close(id);
            });
        }
    }
}

impl UserData for ConnObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.conn");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("id", |lua, this, args: mlua::MultiValue| {
            read_only(lua, &args)?;
            Ok(this.id)
        });
        methods.add_method("remote_id", |lua, this, args: mlua::MultiValue| {
            read_only(lua, &args)?;
            Ok(this.host.remote_id(this.id))
        });
        methods.add_method("listener", |lua, this, args: mlua::MultiValue| {
            read_only(lua, &args)?;
            Ok(match this.role {
                Role::Listener(kind) => kind as i64,
                _ => 0,
            })
        });
        methods.add_method("my_type", |lua, this, args: mlua::MultiValue| {
            read_only(lua, &args)?;
            Ok(if this.role == Role::Backend {
                MY_SERVER
            } else {
                MY_CLIENT
            })
        });
        methods.add_method("socket_address", |_, this, ()| {
            let peer = this.host.worker.info(this.id).and_then(|i| i.peer);
            Ok(peer.map(|p| dpm_engine::peer_ip(&p).to_string()))
        });
        methods.add_method("tls", |_, this, ()| {
            // The TLS dpm terminates on this connection: version and cipher, or nil.
            Ok(this.host.worker.tls_info(this.id).unzip())
        });
        methods.add_method("alive", |_, this, ()| {
            Ok(this.host.worker.is_alive(this.id))
        });
        methods.add_method("register", |lua, this, args: mlua::MultiValue| {
            let Some((state, func)) = parse_register_args(lua, args)? else {
                return Ok(());
            };
            this.host.callbacks.register(this.id, state, func);
            Ok(())
        });
        methods.add_method("serve", |lua, this, service: mlua::AnyUserData| {
            let service = service
                .borrow::<crate::services::ServiceObject>()
                .map_err(|_| raise(lua, "serve: argument must be a dpm.service object"))?;
            if !matches!(this.role, Role::Listener(_)) {
                return Err(raise(lua, "serve: only a listener serves a service"));
            }
            this.host
                .worker
                .serve(this.id, service.0.clone())
                .map_err(|e| raise(lua, e))
        });
        methods.add_method("set_timeouts", |lua, this, args: mlua::MultiValue| {
            let wanted = crate::timeouts::parse(lua, args)?;
            if !matches!(this.role, Role::Listener(_)) {
                return Err(raise(lua, "set_timeouts: not a listener"));
            }
            // A closed listener accepts nobody: nothing to set.
            let _ = this
                .host
                .worker
                .set_listener_timeouts(this.id, wanted.connect, wanted.idle);
            Ok(())
        });
        methods.add_method("package_register", |lua, this, args: mlua::MultiValue| {
            if args.len() != 1 {
                return Err(raise(lua, "Wrong number of arguments"));
            }
            let package = match args.into_iter().next() {
                Some(Value::Nil) | None => None,
                Some(Value::UserData(ud)) => Some(package_of(lua, &ud)?),
                Some(_) => return Err(raise(lua, "Argument must be a dpm.callback object or nil")),
            };
            this.host.callbacks.apply_package(this.id, package);
            Ok(())
        });
    }
}

fn package_of(
    lua: &mlua::Lua,
    ud: &AnyUserData,
) -> mlua::Result<Rc<std::cell::RefCell<crate::callbacks::Package>>> {
    ud.borrow::<PackageObject>()
        .map(|p| p.package.clone())
        .map_err(|_| raise(lua, "Argument must be a dpm.callback object or nil"))
}

/// Accessors of read-only fields raise when given a value (reference §7).
pub(crate) fn read_only(lua: &mlua::Lua, args: &mlua::MultiValue) -> mlua::Result<()> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(raise(lua, "Value is read only"))
    }
}
