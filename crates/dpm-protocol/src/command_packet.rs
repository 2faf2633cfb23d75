//! Simple client commands: the generic [`Command`] (any command byte plus its raw
//! argument), [`ComInitDb`], [`ComFieldList`], [`ComSetOption`] and [`ComProcessKill`].
//! Argument-less commands (`COM_PING`, `COM_QUIT`, `COM_RESET_CONNECTION`,
//! `COM_STATISTICS`, ...) are a [`Command`] with an empty argument.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::{com, command_name};
use crate::error::{ProtocolError, Result};
use crate::reader::{expect_header, get_eof_str, get_nul_str, get_u16, get_u32, get_u8, slice_of};
use crate::writer::put_nul_str;

/// Any command: the command byte and the rest of the payload, unparsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// The command byte (see [`crate::com`]).
    pub command: u8,
    /// Everything after the command byte (zero-copy).
    pub argument: Bytes,
}

impl Command {
    /// Splits a command payload. Fails only on an empty payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        let command = get_u8(&mut buf, "command")?;
        Ok(Command {
            command,
            argument: slice_of(payload, buf),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(1 + self.argument.len());
        dst.put_u8(self.command);
        dst.put_slice(&self.argument);
    }

    /// A command without argument (e.g. `Command::simple(com::PING)`).
    pub fn simple(command: u8) -> Self {
        Command {
            command,
            argument: Bytes::new(),
        }
    }

    /// The command's name, e.g. `"COM_QUERY"`.
    pub fn name(&self) -> &'static str {
        command_name(self.command)
    }
}

/// `COM_INIT_DB`: `0x02 ‖ schema (EOF)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComInitDb {
    /// The schema to switch to.
    pub schema: Bytes,
}

impl ComInitDb {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::INIT_DB, "COM_INIT_DB")?;
        Ok(ComInitDb {
            schema: slice_of(payload, get_eof_str(&mut buf)),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::INIT_DB);
        dst.put_slice(&self.schema);
    }
}

/// `COM_FIELD_LIST`: `0x04 ‖ table NUL ‖ wildcard (EOF)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComFieldList {
    /// The table whose columns are listed.
    pub table: Bytes,
    /// A `LIKE` pattern for the column names (may be empty).
    pub wildcard: Bytes,
}

impl ComFieldList {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        const WHAT: &str = "COM_FIELD_LIST";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::FIELD_LIST, WHAT)?;
        let table = slice_of(payload, get_nul_str(&mut buf, WHAT)?);
        Ok(ComFieldList {
            table,
            wildcard: slice_of(payload, get_eof_str(&mut buf)),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::FIELD_LIST);
        put_nul_str(dst, &self.table);
        dst.put_slice(&self.wildcard);
    }
}

/// `COM_SET_OPTION` values.
pub mod set_option {
    /// Enable multi-statements.
    pub const MULTI_STATEMENTS_ON: u16 = 0;
    /// Disable multi-statements.
    pub const MULTI_STATEMENTS_OFF: u16 = 1;
}

/// `COM_SET_OPTION`: `0x1B ‖ int<2> option`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComSetOption {
    /// See [`set_option`].
    pub option: u16,
}

impl ComSetOption {
    /// Decodes the payload.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        const WHAT: &str = "COM_SET_OPTION";
        let mut buf = payload;
        expect_header(&mut buf, com::SET_OPTION, WHAT)?;
        Ok(ComSetOption {
            option: get_u16(&mut buf, WHAT)?,
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::SET_OPTION);
        dst.put_u16_le(self.option);
    }
}

/// `COM_PROCESS_KILL`: `0x0C ‖ int<4> connection_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComProcessKill {
    /// The connection to kill.
    pub connection_id: u32,
}

impl ComProcessKill {
    /// Decodes the payload.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        const WHAT: &str = "COM_PROCESS_KILL";
        let mut buf = payload;
        expect_header(&mut buf, com::PROCESS_KILL, WHAT)?;
        Ok(ComProcessKill {
            connection_id: get_u32(&mut buf, WHAT)?,
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::PROCESS_KILL);
        dst.put_u32_le(self.connection_id);
    }
}

/// Fails unless `payload` is exactly one command byte `command` (for `COM_PING`, ...).
pub fn expect_bare_command(payload: &[u8], command: u8) -> Result<()> {
    match payload {
        [c] if *c == command => Ok(()),
        [c, ..] if *c == command => Err(ProtocolError::malformed(
            command_name(command),
            "unexpected argument",
        )),
        [c, ..] => Err(ProtocolError::UnexpectedHeader {
            what: command_name(command),
            found: *c,
        }),
        [] => Err(ProtocolError::truncated("command")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn fixtures() {
        let c = Command::decode(&Bytes::from_static(b"\x0e")).unwrap();
        assert_eq!(c, Command::simple(com::PING));
        assert_eq!(c.name(), "COM_PING");
        assert!(Command::decode(&Bytes::new()).is_err());
        let d = ComInitDb::decode(&Bytes::from_static(b"\x02test")).unwrap();
        assert_eq!(&d.schema[..], b"test");
        let f = ComFieldList::decode(&Bytes::from_static(b"\x04t1\x00c%")).unwrap();
        assert_eq!((&f.table[..], &f.wildcard[..]), (&b"t1"[..], &b"c%"[..]));
        assert!(ComFieldList::decode(&Bytes::from_static(b"\x04t1")).is_err());
        assert_eq!(
            ComSetOption::decode(b"\x1b\x01\x00").unwrap().option,
            set_option::MULTI_STATEMENTS_OFF
        );
        assert_eq!(
            ComProcessKill::decode(b"\x0c\x05\x00\x00\x00")
                .unwrap()
                .connection_id,
            5
        );
        assert!(expect_bare_command(b"\x0e", com::PING).is_ok());
        assert!(expect_bare_command(b"\x0ex", com::PING).is_err());
        assert!(expect_bare_command(b"\x01", com::PING).is_err());
        assert!(expect_bare_command(b"", com::PING).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(cmd in any::<u8>(), arg in arb_bytes(80), name in arb_cstr(20), opt in any::<u16>(), id in any::<u32>()) {
            let c = Command { command: cmd, argument: arg.clone() };
            let mut out = BytesMut::new();
            c.encode(&mut out);
            prop_assert_eq!(Command::decode(&out.freeze()).unwrap(), c);
            let d = ComInitDb { schema: arg.clone() };
            let mut out = BytesMut::new();
            d.encode(&mut out);
            prop_assert_eq!(ComInitDb::decode(&out.freeze()).unwrap(), d);
            let f = ComFieldList { table: name, wildcard: arg };
            let mut out = BytesMut::new();
            f.encode(&mut out);
            prop_assert_eq!(ComFieldList::decode(&out.freeze()).unwrap(), f);
            let s = ComSetOption { option: opt };
            let mut out = BytesMut::new();
            s.encode(&mut out);
            prop_assert_eq!(ComSetOption::decode(&out).unwrap(), s);
            let k = ComProcessKill { connection_id: id };
            let mut out = BytesMut::new();
            k.encode(&mut out);
            prop_assert_eq!(ComProcessKill::decode(&out).unwrap(), k);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let _ = ComSetOption::decode(&data);
            let _ = ComProcessKill::decode(&data);
            let _ = expect_bare_command(&data, com::PING);
            let b = Bytes::from(data);
            let _ = Command::decode(&b);
            let _ = ComInitDb::decode(&b);
            let _ = ComFieldList::decode(&b);
        }
    }
}
