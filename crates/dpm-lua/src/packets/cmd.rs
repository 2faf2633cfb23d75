//! `dpm.cmd`: a client command, reference §7.6.
//!
//! `argument` is the whole payload after the command byte, binary-safe both ways (the
//! original cut it at the first NUL). A wired command always starts a new exchange: the
//! engine gives it sequence id 0.

use bytes::{Bytes, BytesMut};
use dpm_protocol::command::com;
use dpm_protocol::{Command, ProtocolError};
use mlua::{MultiValue, UserData, UserDataFields, UserDataMethods};

use super::accessors::{self as acc, Codec, Lazy};

impl Codec for Command {
    const WHAT: &'static str = "command packet";
    const LAYOUT_CAPS: u64 = 0;
    fn decode(payload: &Bytes, _caps: u64) -> Result<Self, ProtocolError> {
        Command::decode(payload)
    }
    fn encode(&self, dst: &mut BytesMut, _caps: u64) {
        Command::encode(self, dst)
    }
}

/// The `dpm.cmd` object.
pub struct CmdObject {
    pub(crate) packet: Lazy<Command>,
}

impl CmdObject {
    /// The command of `dpm.new_cmd_pkt()`: `COM_QUERY` `select @@version limit 1`.
    pub fn new() -> Self {
        CmdObject {
            packet: Lazy::new(Command {
                command: com::QUERY,
                argument: Bytes::from_static(b"select @@version limit 1"),
            }),
        }
    }

    /// A command received under `caps`.
    pub fn received(payload: Bytes, caps: u64) -> Self {
        CmdObject {
            packet: Lazy::received(payload, caps),
        }
    }
}

impl Default for CmdObject {
    fn default() -> Self {
        Self::new()
    }
}

impl UserData for CmdObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.cmd");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("command", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "command", |p| &mut p.command)
        });
        methods.add_method_mut("argument", |lua, this, args: MultiValue| {
            acc::bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.argument,
                |lua, v| acc::bytes_arg(lua, v, "argument"),
            )
        });
    }
}
