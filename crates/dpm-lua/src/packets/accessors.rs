//! What every packet object shares: the lazily decoded packet ([`Lazy`]) and the
//! accessor calling convention of reference §7.
//!
//! * `obj:x()` reads, `obj:x(v)` writes; a read-only accessor given an argument raises
//!   `Value is read only`.
//! * Integer setters take Lua integers (or floats with an exact integer value, or numeric
//!   strings, as `luaL_checkinteger` does) and raise when the value does not fit the field,
//!   instead of truncating it like the original.
//! * Flag accessors: `obj:f(FLAG)` → boolean (any bit of FLAG set), `obj:f(FLAG, bool)` sets
//!   or clears the bits, no argument raises `Must specify a flag to retrieve or set`.
//! * String getters return every byte (a Lua string may hold NULs); setters check limits.
//!
//! This module must not know any packet layout: that is `dpm-protocol`'s, reached through
//! the [`Codec`] trait.

use bytes::{Bytes, BytesMut};
use dpm_protocol::ProtocolError;
use mlua::{IntoLuaMulti, Lua, MultiValue, Value};

use crate::errors::raise;

/// Capabilities assumed for a connection that has not negotiated any yet (nothing was
/// seen of its login): the 4.1 protocol, which every client and server since 2004 speaks.
pub(crate) const FALLBACK_CAPS: u64 = dpm_protocol::caps::CLIENT_LONG_PASSWORD
    | dpm_protocol::caps::CLIENT_PROTOCOL_41
    | dpm_protocol::caps::CLIENT_TRANSACTIONS
    | dpm_protocol::caps::CLIENT_SECURE_CONNECTION;

/// The capabilities to decode or encode with: the negotiated ones, or [`FALLBACK_CAPS`].
pub(crate) fn effective_caps(negotiated: u64) -> u64 {
    if negotiated == 0 {
        FALLBACK_CAPS
    } else {
        negotiated
    }
}

/// A packet type a Lua object wraps: decoded from and encoded to a payload by
/// `dpm-protocol`, for the capabilities of the connection concerned.
pub(crate) trait Codec: Sized {
    /// The packet's name in error messages ("OK packet").
    const WHAT: &'static str;
    /// Capability bits that change this packet's layout; a received packet whose source
    /// agreed the same bits as the target is re-wired byte for byte.
    const LAYOUT_CAPS: u64;
    /// Decodes a payload received under `caps`.
    fn decode(payload: &Bytes, caps: u64) -> Result<Self, ProtocolError>;
    /// Encodes the payload for a connection that negotiated `caps`.
    fn encode(&self, dst: &mut BytesMut, caps: u64);
}

/// A packet that is decoded on the first accessor call and re-encoded only when it was
/// changed (or when the target connection needs another layout).
pub(crate) struct Lazy<T> {
    /// The received payload, while nothing was changed.
    raw: Option<Bytes>,
    /// Capabilities the payload was received under.
    caps: u64,
    /// The decoded packet, once needed.
    value: Option<T>,
}

impl<T: Codec> Lazy<T> {
    /// A packet built by a script.
    pub(crate) fn new(value: T) -> Self {
        Lazy {
            raw: None,
            caps: 0,
            value: Some(value),
        }
    }

    /// A packet received under `caps`, not decoded yet.
    pub(crate) fn received(payload: Bytes, caps: u64) -> Self {
        Lazy {
            raw: Some(payload),
            caps,
            value: None,
        }
    }

    /// The decoded packet (decoding it now if needed). A decoding error becomes a Lua error.
    pub(crate) fn value(&mut self, lua: &Lua) -> mlua::Result<&mut T> {
        let value = match self.value.take() {
            Some(value) => value,
            None => {
                let raw = self.raw.clone().unwrap_or_default();
                T::decode(&raw, self.caps)
                    .map_err(|e| raise(lua, format!("cannot decode the {}: {e}", T::WHAT)))?
            }
        };
        Ok(self.value.insert(value))
    }

    /// Records that a field was written: from now on the packet is re-encoded.
    pub(crate) fn changed(&mut self) {
        self.raw = None;
    }

    /// The payload to write to a connection that negotiated `caps`: the received bytes
    /// when nothing changed and the layout is the same, else a fresh encoding.
    pub(crate) fn payload(&mut self, lua: &Lua, caps: u64) -> mlua::Result<Bytes> {
        if let Some(raw) = &self.raw {
            if (self.caps ^ caps) & T::LAYOUT_CAPS == 0 {
                return Ok(raw.clone());
            }
        }
        let mut dst = BytesMut::new();
        self.value(lua)?.encode(&mut dst, caps);
        Ok(dst.freeze())
    }
}

/// Raises `Value is read only` when a read-only accessor is given an argument.
pub(crate) fn read_only(lua: &Lua, args: &MultiValue) -> mlua::Result<()> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(raise(lua, "Value is read only"))
    }
}

/// An unsigned integer field of a packet.
pub(crate) trait UInt: Copy {
    /// Largest value the field holds.
    const MAX: u64;
    /// Widens to `u64`.
    fn to_u64(self) -> u64;
    /// Narrows from a value known to be ≤ `MAX`.
    fn from_u64(v: u64) -> Self;
}

macro_rules! uint {
    ($($t:ty),*) => {$(
        impl UInt for $t {
            const MAX: u64 = <$t>::MAX as u64;
            fn to_u64(self) -> u64 {
                self as u64
            }
            fn from_u64(v: u64) -> Self {
                v as $t
            }
        }
    )*};
}
uint!(u8, u16, u32, u64);

/// A Lua integer argument (an integer, a float with an exact integer value or a numeric
/// string), or an error naming `what`.
pub(crate) fn integer(lua: &Lua, value: &Value, what: &str) -> mlua::Result<i64> {
    match lua.coerce_integer(value.clone()) {
        Ok(Some(i)) => Ok(i),
        _ => Err(raise(
            lua,
            format!("{what} must be an integer, got {}", describe(value)),
        )),
    }
}

/// An integer argument for a field of type `T`. 64-bit fields take any Lua integer as its
/// bit pattern (Lua has no unsigned 64-bit integers); narrower ones must be in range.
pub(crate) fn uint_arg<T: UInt>(lua: &Lua, value: &Value, what: &str) -> mlua::Result<T> {
    let i = integer(lua, value, what)?;
    if T::MAX == u64::MAX {
        return Ok(T::from_u64(i as u64));
    }
    match u64::try_from(i) {
        Ok(v) if v <= T::MAX => Ok(T::from_u64(v)),
        _ => Err(raise(
            lua,
            format!("{what} must be between 0 and {}, got {i}", T::MAX),
        )),
    }
}

/// A Lua string argument as bytes.
pub(crate) fn bytes_arg(lua: &Lua, value: &Value, what: &str) -> mlua::Result<Bytes> {
    match value {
        Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(value.clone()) {
            Ok(Some(s)) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
            _ => Err(raise(lua, format!("{what} must be a string"))),
        },
        other => Err(raise(
            lua,
            format!("{what} must be a string, got {}", describe(other)),
        )),
    }
}

/// A string argument that goes on the wire NUL-terminated, so must not contain NUL, and
/// is at most `max` bytes long.
pub(crate) fn cstring_arg(lua: &Lua, value: &Value, what: &str, max: usize) -> mlua::Result<Bytes> {
    let s = bytes_arg(lua, value, what)?;
    if s.contains(&0) {
        return Err(raise(lua, format!("{what} must not contain NUL bytes")));
    }
    if s.len() > max {
        return Err(raise(
            lua,
            format!("{what} is too long: {} bytes (at most {max})", s.len()),
        ));
    }
    Ok(s)
}

/// The Lua type name of a value, for error messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    value.type_name()
}

/// Nothing: what setters return.
pub(crate) fn none() -> MultiValue {
    MultiValue::new()
}

/// A byte string as a Lua value.
pub(crate) fn lua_bytes(lua: &Lua, b: &[u8]) -> mlua::Result<MultiValue> {
    lua.create_string(b)?.into_lua_multi(lua)
}

/// `obj:x()` / `obj:x(v)` on an unsigned integer field.
pub(crate) fn uint_field<P: Codec, T: UInt>(
    lua: &Lua,
    lazy: &mut Lazy<P>,
    args: &MultiValue,
    what: &str,
    field: fn(&mut P) -> &mut T,
) -> mlua::Result<MultiValue> {
    let slot = field(lazy.value(lua)?);
    match args.front() {
        None => (slot.to_u64() as i64).into_lua_multi(lua),
        Some(v) => {
            *slot = uint_arg(lua, v, what)?;
            lazy.changed();
            Ok(none())
        }
    }
}

/// A read-only integer field.
pub(crate) fn uint_ro<P: Codec, T: UInt>(
    lua: &Lua,
    lazy: &mut Lazy<P>,
    args: &MultiValue,
    field: fn(&mut P) -> &mut T,
) -> mlua::Result<MultiValue> {
    read_only(lua, args)?;
    let slot = field(lazy.value(lua)?);
    (slot.to_u64() as i64).into_lua_multi(lua)
}

/// `obj:f(FLAG)` / `obj:f(FLAG, bool)` on a flag field of type `T`.
pub(crate) fn flag_field<P: Codec, T: UInt>(
    lua: &Lua,
    lazy: &mut Lazy<P>,
    args: &MultiValue,
    what: &str,
    field: fn(&mut P) -> &mut T,
) -> mlua::Result<MultiValue> {
    let mut value = field(lazy.value(lua)?).to_u64();
    match flag_op(lua, &mut value, args, what, T::MAX)? {
        Some(result) => result.into_lua_multi(lua),
        None => {
            *field(lazy.value(lua)?) = T::from_u64(value);
            lazy.changed();
            Ok(none())
        }
    }
}

/// The flag convention on a plain value: `Some(is_set)` for a query, `None` after
/// setting or clearing the bits in `value`.
pub(crate) fn flag_op(
    lua: &Lua,
    value: &mut u64,
    args: &MultiValue,
    what: &str,
    max: u64,
) -> mlua::Result<Option<bool>> {
    let mut it = args.iter();
    let Some(flag) = it.next() else {
        return Err(raise(lua, "Must specify a flag to retrieve or set"));
    };
    let flag = integer(lua, flag, what)? as u64;
    let Some(on) = it.next() else {
        return Ok(Some(*value & flag != 0));
    };
    if it.next().is_some() {
        return Err(raise(lua, "Flags need only FLAG, BOOLEAN as arguments"));
    }
    if flag & !max != 0 {
        return Err(raise(
            lua,
            format!("{what}: flag {flag:#x} does not fit in the field (at most {max:#x})"),
        ));
    }
    if on.as_boolean().unwrap_or(!on.is_nil()) {
        *value |= flag;
    } else {
        *value &= !flag;
    }
    Ok(None)
}

/// `obj:x()` / `obj:x(str)` on a byte-string field; `check` validates a new value.
pub(crate) fn bytes_field<P: Codec>(
    lua: &Lua,
    lazy: &mut Lazy<P>,
    args: &MultiValue,
    field: fn(&mut P) -> &mut Bytes,
    check: impl FnOnce(&Lua, &Value) -> mlua::Result<Bytes>,
) -> mlua::Result<MultiValue> {
    let slot = field(lazy.value(lua)?);
    match args.front() {
        None => lua_bytes(lua, slot),
        Some(v) => {
            *slot = check(lua, v)?;
            lazy.changed();
            Ok(none())
        }
    }
}

/// Like [`bytes_field`] for an optional string: nil when absent, `obj:x(nil)` removes it.
pub(crate) fn opt_bytes_field<P: Codec>(
    lua: &Lua,
    lazy: &mut Lazy<P>,
    args: &MultiValue,
    field: fn(&mut P) -> &mut Option<Bytes>,
    check: impl FnOnce(&Lua, &Value) -> mlua::Result<Bytes>,
) -> mlua::Result<MultiValue> {
    let slot = field(lazy.value(lua)?);
    match args.front() {
        None => match slot {
            Some(b) => lua_bytes(lua, b),
            None => Value::Nil.into_lua_multi(lua),
        },
        Some(Value::Nil) => {
            *slot = None;
            lazy.changed();
            Ok(none())
        }
        Some(v) => {
            *slot = Some(check(lua, v)?);
            lazy.changed();
            Ok(none())
        }
    }
}
