//! Replication commands: `COM_BINLOG_DUMP` ([`ComBinlogDump`]), MySQL's
//! `COM_BINLOG_DUMP_GTID` ([`ComBinlogDumpGtid`]) and `COM_REGISTER_SLAVE`
//! ([`ComRegisterSlave`]). The binlog event stream that follows a dump is a sequence of
//! packets `0x00 ‖ event` ended by EOF or ERR; events themselves are not decoded here.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::com;
use crate::error::{ProtocolError, Result};
use crate::reader::{
    expect_header, get_bytes, get_eof_str, get_u16, get_u32, get_u64, get_u8, slice_of,
};

/// `COM_BINLOG_DUMP` flag: return EOF instead of blocking at the end of the binlog.
pub const BINLOG_DUMP_NON_BLOCK: u16 = 1;
/// `COM_BINLOG_DUMP_GTID` flag: the GTID set (`sid_data`) is sent.
pub const BINLOG_THROUGH_GTID: u16 = 4;

/// `COM_BINLOG_DUMP`: `0x12 ‖ int<4> pos ‖ int<2> flags ‖ int<4> server_id ‖ filename (EOF)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComBinlogDump {
    /// Position in the binlog file to start from.
    pub binlog_pos: u32,
    /// Flags ([`BINLOG_DUMP_NON_BLOCK`]).
    pub flags: u16,
    /// The replica's server id.
    pub server_id: u32,
    /// Binlog file name (empty: the first one).
    pub binlog_filename: Bytes,
}

impl ComBinlogDump {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        const WHAT: &str = "COM_BINLOG_DUMP";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::BINLOG_DUMP, WHAT)?;
        let binlog_pos = get_u32(&mut buf, WHAT)?;
        let flags = get_u16(&mut buf, WHAT)?;
        let server_id = get_u32(&mut buf, WHAT)?;
        Ok(ComBinlogDump {
            binlog_pos,
            flags,
            server_id,
            binlog_filename: slice_of(payload, get_eof_str(&mut buf)),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::BINLOG_DUMP);
        dst.put_u32_le(self.binlog_pos);
        dst.put_u16_le(self.flags);
        dst.put_u32_le(self.server_id);
        dst.put_slice(&self.binlog_filename);
    }
}

/// `COM_BINLOG_DUMP_GTID` (MySQL):
/// `0x1E ‖ int<2> flags ‖ int<4> server_id ‖ int<4> name_len ‖ name ‖ int<8> pos
/// [‖ int<4> data_size ‖ sid_data  if BINLOG_THROUGH_GTID]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComBinlogDumpGtid {
    /// Flags ([`BINLOG_DUMP_NON_BLOCK`], [`BINLOG_THROUGH_GTID`]).
    pub flags: u16,
    /// The replica's server id.
    pub server_id: u32,
    /// Binlog file name.
    pub binlog_filename: Bytes,
    /// Position in the file.
    pub binlog_pos: u64,
    /// Encoded GTID set, when `BINLOG_THROUGH_GTID`.
    pub sid_data: Option<Bytes>,
}

impl ComBinlogDumpGtid {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        const WHAT: &str = "COM_BINLOG_DUMP_GTID";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::BINLOG_DUMP_GTID, WHAT)?;
        let flags = get_u16(&mut buf, WHAT)?;
        let server_id = get_u32(&mut buf, WHAT)?;
        let name_len = get_u32(&mut buf, WHAT)? as usize;
        let binlog_filename = slice_of(payload, get_bytes(&mut buf, name_len, WHAT)?);
        let binlog_pos = get_u64(&mut buf, WHAT)?;
        let sid_data = if flags & BINLOG_THROUGH_GTID != 0 {
            let n = get_u32(&mut buf, WHAT)? as usize;
            Some(slice_of(payload, get_bytes(&mut buf, n, WHAT)?))
        } else {
            None
        };
        Ok(ComBinlogDumpGtid {
            flags,
            server_id,
            binlog_filename,
            binlog_pos,
            sid_data,
        })
    }

    /// Encodes the payload (`sid_data` written iff `BINLOG_THROUGH_GTID`; empty if `None`).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::BINLOG_DUMP_GTID);
        dst.put_u16_le(self.flags);
        dst.put_u32_le(self.server_id);
        dst.put_u32_le(self.binlog_filename.len() as u32);
        dst.put_slice(&self.binlog_filename);
        dst.put_u64_le(self.binlog_pos);
        if self.flags & BINLOG_THROUGH_GTID != 0 {
            let d = self.sid_data.as_deref().unwrap_or_default();
            dst.put_u32_le(d.len() as u32);
            dst.put_slice(d);
        }
    }
}

/// `COM_REGISTER_SLAVE`: `0x15 ‖ int<4> server_id ‖ int<1>-prefixed hostname, user,
/// password ‖ int<2> port ‖ int<4> replication_rank ‖ int<4> master_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComRegisterSlave {
    /// The replica's server id.
    pub server_id: u32,
    /// The replica's report host.
    pub hostname: Bytes,
    /// The replica's report user.
    pub user: Bytes,
    /// The replica's report password.
    pub password: Bytes,
    /// The replica's report port.
    pub port: u16,
    /// Ignored.
    pub replication_rank: u32,
    /// Usually 0.
    pub master_id: u32,
}

fn get_u8_str<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8]> {
    let n = get_u8(buf, what)? as usize;
    get_bytes(buf, n, what)
}

fn put_u8_str(dst: &mut BytesMut, s: &[u8]) {
    let n = s.len().min(255);
    dst.put_u8(n as u8);
    dst.put_slice(&s[..n]);
}

impl ComRegisterSlave {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        const WHAT: &str = "COM_REGISTER_SLAVE";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::REGISTER_SLAVE, WHAT)?;
        let server_id = get_u32(&mut buf, WHAT)?;
        let hostname = slice_of(payload, get_u8_str(&mut buf, WHAT)?);
        let user = slice_of(payload, get_u8_str(&mut buf, WHAT)?);
        let password = slice_of(payload, get_u8_str(&mut buf, WHAT)?);
        let port = get_u16(&mut buf, WHAT)?;
        let replication_rank = get_u32(&mut buf, WHAT)?;
        let master_id = get_u32(&mut buf, WHAT)?;
        if !buf.is_empty() {
            return Err(ProtocolError::malformed(WHAT, "trailing bytes"));
        }
        Ok(ComRegisterSlave {
            server_id,
            hostname,
            user,
            password,
            port,
            replication_rank,
            master_id,
        })
    }

    /// Encodes the payload (strings longer than 255 bytes are cut).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::REGISTER_SLAVE);
        dst.put_u32_le(self.server_id);
        put_u8_str(dst, &self.hostname);
        put_u8_str(dst, &self.user);
        put_u8_str(dst, &self.password);
        dst.put_u16_le(self.port);
        dst.put_u32_le(self.replication_rank);
        dst.put_u32_le(self.master_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn fixtures() {
        let wire =
            Bytes::from_static(b"\x12\x04\x00\x00\x00\x00\x00\x02\x00\x00\x00mysql-bin.000001");
        let d = ComBinlogDump::decode(&wire).unwrap();
        assert_eq!(
            (d.binlog_pos, d.server_id, &d.binlog_filename[..]),
            (4, 2, &b"mysql-bin.000001"[..])
        );
        let mut out = BytesMut::new();
        d.encode(&mut out);
        assert_eq!(out.freeze(), wire);
        assert!(
            ComRegisterSlave::decode(&Bytes::from_static(b"\x15\x01\x00\x00\x00\x05ab")).is_err()
        );
        assert!(ComBinlogDumpGtid::decode(&Bytes::from_static(
            b"\x1e\x04\x00\x01\x00\x00\x00\xff\xff\xff\xff"
        ))
        .is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(a in any::<u32>(), f in any::<u16>(), s in any::<u32>(), name in arb_bytes(40), pos in any::<u64>(), sid in arb_bytes(40), port in any::<u16>()) {
            let d = ComBinlogDump { binlog_pos: a, flags: f, server_id: s, binlog_filename: name.clone() };
            let mut out = BytesMut::new();
            d.encode(&mut out);
            prop_assert_eq!(ComBinlogDump::decode(&out.freeze()).unwrap(), d);
            let g = ComBinlogDumpGtid {
                flags: f, server_id: s, binlog_filename: name.clone(), binlog_pos: pos,
                sid_data: (f & BINLOG_THROUGH_GTID != 0).then_some(sid.clone()),
            };
            let mut out = BytesMut::new();
            g.encode(&mut out);
            prop_assert_eq!(ComBinlogDumpGtid::decode(&out.freeze()).unwrap(), g);
            let r = ComRegisterSlave { server_id: s, hostname: name, user: sid.clone(), password: sid, port, replication_rank: a, master_id: s };
            let mut out = BytesMut::new();
            r.encode(&mut out);
            prop_assert_eq!(ComRegisterSlave::decode(&out.freeze()).unwrap(), r);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let b = Bytes::from(data);
            let _ = ComBinlogDump::decode(&b);
            let _ = ComBinlogDumpGtid::decode(&b);
            let _ = ComRegisterSlave::decode(&b);
        }
    }
}
