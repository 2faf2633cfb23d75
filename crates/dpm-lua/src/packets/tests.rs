//! Tests of the packet objects through a real Lua state, with packets captured from
//! MariaDB 10.11 and the MySQL protocol documentation.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use dpm_engine::tracker::EofStyle;
use dpm_engine::{Event, Role, Worker};
use dpm_protocol::caps::*;
use dpm_protocol::scramble::native_password_scramble;
use dpm_protocol::{ColumnDefinition41, HandshakeResponse41, HandshakeV10};
use mlua::{AnyUserData, Lua, Value};

use super::accessors::effective_caps;
use crate::dpm_events::State;
use crate::host::Host;

/// MariaDB 10.11 greeting (CLIENT_MYSQL clear, extended caps 0x1d, mysql_native_password).
const MARIADB_HANDSHAKE: &[u8] = b"\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\x00\
\x2a\x00\x00\x00\x3e\x52\x47\x5b\x3c\x6a\x5e\x7e\x00\xfe\xf7\x2d\x02\x00\xff\x81\x15\
\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00\
\x5c\x28\x77\x23\x70\x4f\x6b\x38\x61\x3d\x5e\x4b\x00\
mysql_native_password\x00";

/// A MariaDB Connector/C login: extended caps, lenenc auth data, database, attributes.
const MARIADB_LOGIN: &[u8] = b"\x0e\xa2\x3e\x01\x00\x00\x00\x40\x2d\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x15\x00\x00\x00\
app\x00\x14\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\
shop\x00mysql_native_password\x00\
\x18\x03_os\x05Linux\x0c_client_name\x00";

/// OK: affected rows 300, insert id 70000, AUTOCOMMIT, no warnings.
const OK_300_70000: &[u8] = b"\x00\xfc\x2c\x01\xfd\x70\x11\x01\x02\x00\x00\x00";

/// `select @@version_comment limit 1`: column definition from the MySQL documentation.
const COLDEF: &[u8] =
    b"\x03def\x00\x00\x00\x11@@version_comment\x00\x0c\x08\x00\x1c\x00\x00\x00\xfd\x00\x00\x1f\x00\x00";

/// Caps of a 4.1 client and server without the newer extensions.
const CAPS41: u64 =
    CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_LONG_PASSWORD;

fn style(name: &str) -> EofStyle {
    match name {
        "ok" => EofStyle::OkAsEof,
        "omit" => EofStyle::Omit,
        _ => EofStyle::Classic,
    }
}

/// A Lua state with `dpm` (constants and packets) plus test helpers:
/// `encode(pkt [, caps [, eof_style]])` → payload or nil,
/// `received(state, payload [, caps])` → the object a callback for `dpm.<state>` would get,
/// `expect_error(substring, f, ...)`.
fn env() -> (Lua, Rc<Host>) {
    let worker = Worker::new(0, Default::default());
    let lua = Lua::new();
    let host = Host::new(worker, lua.clone());
    let dpm = lua.create_table().unwrap();
    crate::constants::register(&lua, &dpm).unwrap();
    crate::functions::register(&lua, &dpm, &host).unwrap();
    super::register(&lua, &dpm, &host).unwrap();
    lua.globals().set("dpm", dpm).unwrap();
    let encode = lua
        .create_function(
            |lua, (pkt, caps, eof): (AnyUserData, Option<i64>, Option<String>)| {
                let eof = style(eof.as_deref().unwrap_or("classic"));
                match super::wire::encode(lua, &pkt, caps.unwrap_or(0) as u64, || eof)? {
                    Some(b) => Ok(Value::String(lua.create_string(&b)?)),
                    None => Ok(Value::Nil),
                }
            },
        )
        .unwrap();
    lua.globals().set("encode", encode).unwrap();
    let received = lua
        .create_function(
            |lua, (state, payload, caps): (u8, mlua::String, Option<i64>)| {
                let caps = effective_caps(caps.unwrap_or(0) as u64);
                // The event of the state that a received packet raises.
                let Some(&event) = State(state).events().first() else {
                    return Err(mlua::Error::runtime(format!("state {state} never fires")));
                };
                super::object_for(
                    lua,
                    event,
                    Bytes::copy_from_slice(&payload.as_bytes()),
                    caps,
                )
            },
        )
        .unwrap();
    lua.globals().set("received", received).unwrap();
    for (name, bytes) in [
        ("MARIADB_HANDSHAKE", MARIADB_HANDSHAKE),
        ("MARIADB_LOGIN", MARIADB_LOGIN),
        ("OK_300_70000", OK_300_70000),
        ("COLDEF", COLDEF),
    ] {
        lua.globals()
            .set(name, lua.create_string(bytes).unwrap())
            .unwrap();
    }
    for (name, value) in [
        ("CAPS41", CAPS41),
        ("CLIENT_SSL", CLIENT_SSL),
        ("CLIENT_PLUGIN_AUTH", CLIENT_PLUGIN_AUTH),
        ("CLIENT_CONNECT_WITH_DB", CLIENT_CONNECT_WITH_DB),
        ("CLIENT_SESSION_TRACK", CLIENT_SESSION_TRACK),
        ("CLIENT_DEPRECATE_EOF", CLIENT_DEPRECATE_EOF),
        (
            "CLIENT_OPTIONAL_RESULTSET_METADATA",
            CLIENT_OPTIONAL_RESULTSET_METADATA,
        ),
        (
            "MARIADB_CLIENT_EXTENDED_METADATA",
            MARIADB_CLIENT_EXTENDED_METADATA,
        ),
        (
            "MARIADB_CLIENT_CACHE_METADATA",
            MARIADB_CLIENT_CACHE_METADATA,
        ),
    ] {
        lua.globals().set(name, value as i64).unwrap();
    }
    lua.load(
        r#"
        function expect_error(needle, f, ...)
            local ok, err = pcall(f, ...)
            assert(not ok, "expected an error containing '" .. needle .. "'")
            assert(string.find(tostring(err), needle, 1, true), "error '" .. tostring(err) .. "' lacks '" .. needle .. "'")
        end
        function kind(obj) return (tostring(obj):match("^(dpm%.%w+): ")) end
        function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
        "#,
    )
    .exec()
    .unwrap();
    (lua, host)
}

fn run(lua: &Lua, code: &str) {
    if let Err(e) = lua.load(code).set_name("@test.lua").exec() {
        panic!("{}", crate::errors::error_line(&e));
    }
}

fn eval_bytes(lua: &Lua, code: &str) -> Bytes {
    match lua.load(code).set_name("@test.lua").eval::<mlua::String>() {
        Ok(s) => Bytes::copy_from_slice(&s.as_bytes()),
        Err(e) => panic!("{}", crate::errors::error_line(&e)),
    }
}

#[test]
fn metatable_names() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        for _, name in ipairs{"handshake", "auth", "ok", "err", "cmd", "rset", "field", "row", "eof"} do
            local obj = dpm["new_" .. name .. "_pkt"]()
            assert(kind(obj) == "dpm." .. name, tostring(obj))
        end
        "#,
    );
}

#[test]
fn handshake_defaults_and_accessors() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local hs = dpm.new_handshake_pkt()
        assert(hs:protocol_version() == 10)
        assert(hs:server_version() == "5.0.37")
        assert(hs:thread_id() == 1)
        assert(hs:server_language() == 33)
        assert(hs:server_status(dpm.SERVER_STATUS_AUTOCOMMIT) == true)
        assert(hs:server_status(dpm.SERVER_STATUS_IN_TRANS) == false)
        for _, bit in ipairs{1, 4, 8, 512, 8192, 32768, CLIENT_PLUGIN_AUTH} do
            assert(hs:server_capabilities(bit) == true, bit)
        end
        assert(hs:server_capabilities(CLIENT_SSL) == false)
        assert(hs:auth_plugin_name() == "mysql_native_password")
        local nonce = hs:scramble_buff()
        assert(#nonce == 20)
        for i = 1, 20 do local b = nonce:byte(i); assert(b >= 33 and b <= 126) end
        assert(dpm.new_handshake_pkt():scramble_buff() ~= nonce, "nonces are random")

        expect_error("Value is read only", hs.scramble_buff, hs, "x")
        expect_error("Must specify a flag to retrieve or set", hs.server_capabilities, hs)
        expect_error("Flags need only FLAG, BOOLEAN", hs.server_status, hs, 1, true, 3)

        hs:protocol_version(9); assert(hs:protocol_version() == 9); hs:protocol_version(10)
        hs:server_version("10.11.6-dpm"); assert(hs:server_version() == "10.11.6-dpm")
        expect_error("server_version is too long", hs.server_version, hs, string.rep("x", 60))
        expect_error("must not contain NUL", hs.server_version, hs, "a\0b")
        hs:thread_id(4000000000); assert(hs:thread_id() == 4000000000)
        hs:thread_id(7.0); assert(hs:thread_id() == 7)
        expect_error("thread_id must be an integer", hs.thread_id, hs, 7.5)
        expect_error("thread_id must be between 0 and 4294967295", hs.thread_id, hs, -1)
        expect_error("server_language must be between 0 and 255", hs.server_language, hs, 256)
        hs:server_language(8); assert(hs:server_language() == 8)
        hs:server_capabilities(CLIENT_SSL, true); assert(hs:server_capabilities(CLIENT_SSL))
        hs:server_capabilities(CLIENT_SSL, false); assert(not hs:server_capabilities(CLIENT_SSL))
        hs:server_status(dpm.SERVER_STATUS_IN_TRANS, true)
        assert(hs:server_status(dpm.SERVER_STATUS_IN_TRANS) and hs:server_status(dpm.SERVER_STATUS_AUTOCOMMIT))
        expect_error("does not fit", hs.server_status, hs, 0x10000, true)
        hs:auth_plugin_name(nil); assert(hs:auth_plugin_name() == nil)
        hs:auth_plugin_name("mysql_native_password")
        wired = encode(hs)
        "#,
    );
    let wired = eval_bytes(&lua, "return wired");
    let hs = HandshakeV10::decode(&wired).unwrap();
    assert_eq!(&hs.server_version[..], b"10.11.6-dpm");
    assert_eq!(hs.connection_id, 7);
    assert_eq!(hs.character_set, 8);
    assert_eq!(hs.status_flags, 3);
    assert_eq!(hs.capabilities, super::handshake::DEFAULT_CAPS);
    assert_eq!(hs.auth_plugin_data.len(), 20);
    assert_eq!(
        hs.auth_plugin_name.as_deref(),
        Some(&b"mysql_native_password"[..])
    );
}

#[test]
fn received_mariadb_handshake_keeps_what_was_not_edited() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local hs = received(dpm.MYS_WAIT_AUTH, MARIADB_HANDSHAKE)
        assert(kind(hs) == "dpm.handshake")
        assert(encode(hs) == MARIADB_HANDSHAKE, "unchanged: byte for byte")
        assert(hs:server_version() == "5.5.5-10.11.6-MariaDB-0+deb12u1")
        assert(hs:thread_id() == 42)
        assert(hs:server_language() == 45)
        assert(#hs:scramble_buff() == 20)
        assert(hs:server_capabilities(1) == false, "CLIENT_MYSQL clear")
        assert(hs:server_capabilities(CLIENT_PLUGIN_AUTH))
        assert(hs:server_capabilities(MARIADB_CLIENT_EXTENDED_METADATA), "extended caps kept")
        assert(hs:auth_plugin_name() == "mysql_native_password")
        assert(encode(hs) == MARIADB_HANDSHAKE, "reading changes nothing")
        hs:server_version("5.5.5-10.11.6-dpm")
        edited = encode(hs)
        "#,
    );
    let edited = HandshakeV10::decode(&eval_bytes(&lua, "return edited")).unwrap();
    let mut original = HandshakeV10::decode(&Bytes::from_static(MARIADB_HANDSHAKE)).unwrap();
    original.server_version = Bytes::from_static(b"5.5.5-10.11.6-dpm");
    assert_eq!(edited, original);
}

#[test]
fn auth_defaults_and_accessors() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local a = dpm.new_auth_pkt()
        assert(a:max_packet_size() == 16777216)
        assert(a:charset_number() == 33)
        assert(a:user() == "root")
        assert(a:databasename() == nil)
        assert(a:auth_plugin_name() == "mysql_native_password")
        assert(a:client_flags(512) and a:client_flags(CLIENT_PLUGIN_AUTH) and not a:client_flags(CLIENT_SSL))
        assert(next(a:connect_attrs()) == nil)
        expect_error("Value is read only", a.connect_attrs, a, {})
        nodb = encode(a)
        local long = string.rep("u", 100)
        a:user(long); assert(a:user() == long)
        a:user("bob")
        a:databasename("shop"); assert(a:databasename() == "shop")
        a:max_packet_size(1024); a:charset_number(45)
        withdb = encode(a)
        a:databasename(nil); assert(a:databasename() == nil)
        expect_error("max_packet_size must be between", a.max_packet_size, a, 2^32)
        "#,
    );
    let nodb = HandshakeResponse41::decode(&eval_bytes(&lua, "return nodb")).unwrap();
    assert_eq!(
        nodb.capabilities & CLIENT_CONNECT_WITH_DB,
        0,
        "no database, no CONNECT_WITH_DB"
    );
    assert_eq!(&nodb.username[..], b"root");
    assert!(nodb.auth_response.is_empty());
    let withdb = HandshakeResponse41::decode(&eval_bytes(&lua, "return withdb")).unwrap();
    assert_ne!(withdb.capabilities & CLIENT_CONNECT_WITH_DB, 0);
    assert_eq!(withdb.database.as_deref(), Some(&b"shop"[..]));
    assert_eq!(
        (
            &withdb.username[..],
            withdb.max_packet_size,
            withdb.character_set
        ),
        (&b"bob"[..], 1024, 45)
    );
}

#[test]
fn received_login() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local a = received(dpm.MYC_WAITING, MARIADB_LOGIN)
        assert(kind(a) == "dpm.auth")
        assert(a:user() == "app")
        assert(a:databasename() == "shop")
        assert(a:charset_number() == 45)
        assert(a:client_flags(1) == false and a:client_flags(512))
        assert(a:auth_plugin_name() == "mysql_native_password")
        local attrs = a:connect_attrs()
        assert(attrs._os == "Linux" and attrs._client_name == "")
        assert(encode(a) == MARIADB_LOGIN)
        a:databasename("other")
        local again = received(dpm.MYC_WAITING, encode(a))
        assert(again:databasename() == "other" and again:user() == "app")
        assert(again:connect_attrs()._os == "Linux")
        "#,
    );
}

#[test]
fn ok_packets() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local ok = dpm.new_ok_pkt()
        assert(ok:field_count() == 0 and ok:affected_rows() == 0 and ok:insert_id() == 0)
        assert(ok:warning_count() == 0 and ok:message() == "")
        assert(ok:server_status(dpm.SERVER_STATUS_AUTOCOMMIT))
        assert(encode(ok, CAPS41) == "\0\0\0\2\0\0\0")
        expect_error("Value is read only", ok.field_count, ok, 1)
        expect_error("Value is read only", ok.message, ok, "x")
        ok:affected_rows(300); ok:insert_id(70000)
        assert(encode(ok, CAPS41) == OK_300_70000)
        ok:affected_rows(5000000000); ok:warning_count(3)
        local back = received(dpm.MYS_WAIT_CMD, encode(ok, CAPS41), CAPS41)
        assert(back:affected_rows() == 5000000000 and back:insert_id() == 70000 and back:warning_count() == 3)
        expect_error("warning_count must be between 0 and 65535", ok.warning_count, ok, 70000)

        local r = received(dpm.MYS_WAIT_CMD, OK_300_70000, CAPS41)
        assert(kind(r) == "dpm.ok")
        assert(r:affected_rows() == 300, r:affected_rows())
        assert(r:insert_id() == 70000)
        assert(r:server_status(dpm.SERVER_STATUS_AUTOCOMMIT))
        assert(r:warning_count() == 0)
        assert(encode(r, CAPS41) == OK_300_70000)

        -- info string: EOF string without session tracking, lenenc with it.
        local info = "\0\1\0\2\0\0\0Rows matched: 1  Changed: 1  Warnings: 0"
        local r = received(dpm.MYS_WAIT_CMD, info, CAPS41)
        assert(r:message() == "Rows matched: 1  Changed: 1  Warnings: 0")
        assert(encode(r, CAPS41 | CLIENT_SESSION_TRACK) == "\0\1\0\2\0\0\0\40Rows matched: 1  Changed: 1  Warnings: 0")
        expect_error("cannot decode the OK packet", function() return received(dpm.MYS_WAIT_CMD, "\0\252", CAPS41):affected_rows() end)
        "#,
    );
}

#[test]
fn err_packets() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local e = dpm.new_err_pkt()
        assert(e:field_count() == 255 and e:errnum() == 1045 and e:sqlstate() == "28000")
        assert(e:message() == "Access denied for user 'whatever'@'whatever'")
        assert(encode(e) == "\255\21\4#28000Access denied for user 'whatever'@'whatever'", "no trailing NUL")
        expect_error("Value is read only", e.field_count, e, 1)
        expect_error("sqlstate must be exactly 5 characters", e.sqlstate, e, "HY00")
        expect_error("message is too long: 512 bytes", e.message, e, string.rep("m", 512))
        e:message(string.rep("m", 511))
        e:errnum(1064); e:sqlstate("42000"); e:message("bad \0 syntax")
        assert(encode(e) == "\255\40\4#42000bad \0 syntax")

        local r = received(dpm.MYS_RECV_ERR, "\255\72\4#HY000No tables used")
        assert(kind(r) == "dpm.err")
        assert(r:errnum() == 1096 and r:sqlstate() == "HY000" and r:message() == "No tables used")
        local r = received(dpm.MYS_RECV_ERR, "\255\16\4Too many connections")
        assert(r:errnum() == 1040 and r:sqlstate() == "HY000" and r:message() == "Too many connections")
        assert(encode(r) == "\255\16\4Too many connections")
        r:sqlstate("08004")
        assert(encode(r) == "\255\16\4#08004Too many connections")
        local refused = received(dpm.MYS_WAIT_AUTH, "\255\16\4Too many connections")
        assert(kind(refused) == "dpm.err")
        "#,
    );
}

#[test]
fn cmd_packets() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local c = dpm.new_cmd_pkt()
        assert(c:command() == dpm.COM_QUERY and c:argument() == "select @@version limit 1")
        assert(encode(c) == "\3select @@version limit 1")
        c:command(dpm.COM_INIT_DB); c:argument("db\0with nul")
        assert(c:argument() == "db\0with nul")
        assert(encode(c) == "\2db\0with nul")
        expect_error("command must be between 0 and 255", c.command, c, 300)

        local r = received(dpm.MYC_SENT_CMD, "\3SELECT 'a\0b'")
        assert(kind(r) == "dpm.cmd")
        assert(r:command() == 3 and r:argument() == "SELECT 'a\0b'")
        local ping = received(dpm.MYC_SENT_CMD, "\14")
        assert(ping:command() == dpm.COM_PING and ping:argument() == "")
        "#,
    );
}

#[test]
fn field_packets() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local f = dpm.new_field_pkt()
        local name, t = f:name()
        assert(name == nil and t == dpm.MYSQL_TYPE_STRING)
        assert(f:charset() == 33 and f:length() == 32 and f:flags() == 2 and f:decimals() == 0)
        assert(f:db() == "" and f:table() == "" and f:org_table() == "" and f:org_name() == "")
        expect_error("call field:name()", encode, f)
        assert(f:full() == nil)
        f:name("id", dpm.MYSQL_TYPE_LONG)
        local name, t = f:name()
        assert(name == "id" and t == dpm.MYSQL_TYPE_LONG)
        f:name("greeting")
        assert(select(2, f:name()) == dpm.MYSQL_TYPE_STRING)
        f:db("shop"); f:table("t"); f:org_table("orders"); f:org_name("g")
        f:charset(45); f:length(255); f:decimals(31)
        f:flags(0); f:flags(1, true); f:flags(32, true); f:flags(1, false)
        assert(f:flags() == 32)
        assert(f:flags(7) == nil and f:flags() == 7, "flags(v) sets the value")
        plain = encode(f, CAPS41)
        extended = encode(f, CAPS41 | MARIADB_CLIENT_EXTENDED_METADATA)

        local r = received(dpm.MYS_SENDING_FIELDS, COLDEF, CAPS41)
        assert(kind(r) == "dpm.field")
        local name, t = r:name()
        assert(name == "@@version_comment" and t == dpm.MYSQL_TYPE_VAR_STRING)
        assert(r:charset() == 8 and r:length() == 28 and r:decimals() == 31 and r:flags() == 0)
        assert(encode(r, CAPS41) == COLDEF)
        local ext = encode(r, CAPS41 | MARIADB_CLIENT_EXTENDED_METADATA)
        assert(#ext == #COLDEF + 1, "an empty extended-metadata string for a client that negotiated it")
        assert(received(dpm.MYS_SENDING_FIELDS, ext, CAPS41 | MARIADB_CLIENT_EXTENDED_METADATA):name() == "@@version_comment")
        "#,
    );
    let plain = ColumnDefinition41::decode(&eval_bytes(&lua, "return plain"), CAPS41).unwrap();
    assert_eq!(
        (
            &plain.catalog[..],
            &plain.schema[..],
            &plain.table[..],
            &plain.org_table[..]
        ),
        (&b"def"[..], &b"shop"[..], &b"t"[..], &b"orders"[..])
    );
    assert_eq!(
        (&plain.name[..], &plain.org_name[..]),
        (&b"greeting"[..], &b"g"[..])
    );
    assert_eq!(
        (plain.character_set, plain.column_length, plain.column_type),
        (45, 255, 254)
    );
    assert_eq!((plain.flags, plain.decimals), (7, 31));
    let caps = CAPS41 | MARIADB_CLIENT_EXTENDED_METADATA;
    let extended = ColumnDefinition41::decode(&eval_bytes(&lua, "return extended"), caps).unwrap();
    assert_eq!(extended.extended_metadata.as_deref(), Some(&b""[..]));
    assert_eq!(extended.name, plain.name);
}

#[test]
fn rset_pack_and_parse_rows() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local rs = dpm.new_rset_pkt()
        assert(rs:field_count() == 0)
        expect_error("Must use initialized field object", rs.add_field, rs, dpm.new_field_pkt())
        expect_error("add_field needs a dpm.field object", rs.add_field, rs, dpm.new_row_pkt())
        rs:field_count(3)
        assert(encode(rs, CAPS41) == "\3")
        assert(encode(rs, CAPS41 | CLIENT_OPTIONAL_RESULTSET_METADATA) == "\3\1")
        assert(encode(rs, CAPS41 | MARIADB_CLIENT_CACHE_METADATA) == "\3", "MariaDB's flag is for binary result sets only")
        for _, n in ipairs{"id", "name", "note"} do
            local f = dpm.new_field_pkt(); f:name(n); rs:add_field(f)
        end
        assert(rs:field_count() == 3)

        local row = dpm.new_row_pkt()
        assert(row:raw() == "")
        local big = string.rep("x", 300)
        rs:pack_row(row, 42, big, nil)
        assert(row:raw() == "\00242\252\44\1" .. big .. "\251", hex(row:raw():sub(1, 8)))
        local arr = rs:parse_row_array(row)
        assert(arr[1] == "42" and arr[2] == big and arr[3] == nil)
        local tbl = rs:parse_row_table(row)
        assert(tbl.id == "42" and tbl.name == big and tbl.note == nil)
        local n = 0; for _ in pairs(tbl) do n = n + 1 end; assert(n == 2, "NULL columns are absent")

        rs:pack_row(row, 1.5, true, "a\0b")
        local arr = rs:parse_row_array(row)
        assert(arr[1] == "1.5" and arr[2] == "true" and arr[3] == "a\0b")
        expect_error("Number of provided columns does not match the field number: 3", rs.pack_row, rs, row, 1, 2)
        expect_error("Number of provided columns does not match the field number: 3", rs.pack_row, rs, row, 1, 2, 3, 4)
        expect_error("pack_row needs a dpm.row object", rs.pack_row, rs, 1, 2, 3)

        local short = received(dpm.MYS_SENDING_ROWS, "\0011\0012")
        expect_error("There are more fields defined than row data!", rs.parse_row_array, rs, short)
        local cut = received(dpm.MYS_SENDING_ROWS, "\0011\0012\0053")
        expect_error("There are more fields defined than row data!", rs.parse_row_table, rs, cut)

        -- a large value in a received row, and a 4-byte length prefix
        local huge = string.rep("y", 70000)
        local r = received(dpm.MYS_SENDING_ROWS, "\251\253\112\17\1" .. huge .. "\0")
        assert(kind(r) == "dpm.row")
        local arr = rs:parse_row_array(r)
        assert(arr[1] == nil and arr[2] == huge and arr[3] == "")

        rs:remove_field()
        assert(rs:field_count() == 3, "remove_field leaves field_count alone")
        local t = rs:parse_row_table(r)
        assert(t.name == huge and t.note == nil)
        rs:remove_field(); rs:remove_field(); rs:remove_field(); rs:remove_field()
        assert(next(rs:parse_row_array(r)) == nil)

        rs:field_count(40000); assert(rs:field_count() == 32768)
        expect_error("field_count must not be negative", rs.field_count, rs, -1)
        local f = dpm.new_field_pkt(); f:name("only")
        rs:field_count(0); rs:add_field(f)
        assert(rs:field_count() == 1, "add_field grows field_count")

        local r = received(dpm.MYS_SENT_RSET, "\2")
        assert(kind(r) == "dpm.rset" and r:field_count() == 2)
        local m = received(dpm.MYS_SENT_RSET, "\2\1", CAPS41 | CLIENT_OPTIONAL_RESULTSET_METADATA)
        assert(m:field_count() == 2)
        local big = dpm.new_rset_pkt(); big:field_count(300)
        assert(encode(big, CAPS41) == "\252\44\1")
        "#,
    );
}

#[test]
fn eof_packets() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local e = dpm.new_eof_pkt()
        assert(e:warning_count() == 0)
        assert(e:server_status(dpm.SERVER_STATUS_AUTOCOMMIT) == false)
        e:warning_count(2); e:server_status(dpm.SERVER_STATUS_AUTOCOMMIT, true)
        assert(encode(e, CAPS41, "classic") == "\254\2\0\2\0")
        assert(encode(e, CAPS41 | CLIENT_DEPRECATE_EOF, "ok") == "\254\0\0\2\0\2\0")
        assert(encode(e, CAPS41 | CLIENT_DEPRECATE_EOF, "omit") == nil)

        local r = received(dpm.MYS_SENT_FIELDS, "\254\0\0\34\0", CAPS41)
        assert(kind(r) == "dpm.eof")
        assert(r:warning_count() == 0 and r:server_status(dpm.SERVER_STATUS_AUTOCOMMIT) and r:server_status(32))
        assert(encode(r, CAPS41) == "\254\0\0\34\0")
        local w = received(dpm.MYS_WAIT_CMD, "\254\1\0\2\0", CAPS41)
        assert(kind(w) == "dpm.eof" and w:warning_count() == 1)

        -- OK-as-EOF where an EOF is expected, and as the end of rows
        local caps = CAPS41 | CLIENT_DEPRECATE_EOF
        local o = received(dpm.MYS_SENT_FIELDS, "\254\0\0\2\0\3\0", caps)
        assert(o:warning_count() == 3 and o:server_status(dpm.SERVER_STATUS_AUTOCOMMIT))
        assert(encode(o, CAPS41, "classic") == "\254\3\0\2\0")
        local ok = received(dpm.MYS_WAIT_CMD, "\254\0\0\2\0\3\0", caps)
        assert(kind(ok) == "dpm.ok" and ok:field_count() == 254 and ok:warning_count() == 3)
        assert(encode(ok, CAPS41) == "\254\3\0\2\0", "an OK-as-EOF becomes an EOF for a classic client")
        "#,
    );
}

#[test]
fn unknown_packets_become_raw_rows() {
    let (lua, _h) = env();
    run(
        &lua,
        r#"
        local stats = "Uptime: 5  Threads: 1  Questions: 2"
        local s = received(dpm.MYS_WAIT_CMD, stats)
        assert(kind(s) == "dpm.row" and s:raw() == stats)
        assert(encode(s) == stats)
        local x = received(dpm.MYS_GOT_CMD, "\1\2\3")
        assert(kind(x) == "dpm.row" and x:raw() == "\1\2\3")
        expect_error("Value is read only", x.raw, x, "y")
        "#,
    );
}

#[test]
fn to_lua_uses_the_host() {
    let (lua, host) = env();
    let obj = super::to_lua(
        &host,
        12345,
        Event::ResponseEnded,
        dpm_engine::Packet {
            kind: dpm_engine::tracker::PacketKind::Ok,
            payload: Bytes::from_static(OK_300_70000),
        },
    )
    .unwrap();
    lua.globals().set("obj", obj).unwrap();
    run(
        &lua,
        "assert(obj:affected_rows() == 300 and obj:insert_id() == 70000)",
    );
    let obj = super::to_lua(
        &host,
        12345,
        Event::ServerGreeting,
        dpm_engine::Packet {
            kind: dpm_engine::tracker::PacketKind::Handshake,
            payload: Bytes::from_static(b"\x0a5.0"),
        },
    )
    .unwrap();
    lua.globals().set("broken", obj).unwrap();
    run(
        &lua,
        r#"expect_error("cannot decode the handshake packet", broken.thread_id, broken)"#,
    );
}

#[test]
fn check_pass_and_crypt_pass() {
    let (lua, _h) = env();
    // A real login against the MariaDB greeting's nonce, password "toast".
    let greeting = HandshakeV10::decode(&Bytes::from_static(MARIADB_HANDSHAKE)).unwrap();
    let login = HandshakeResponse41 {
        capabilities: CAPS41 | CLIENT_PLUGIN_AUTH,
        max_packet_size: 1 << 24,
        character_set: 33,
        username: Bytes::from_static(b"whee"),
        auth_response: native_password_scramble(b"toast", greeting.nonce())
            .to_vec()
            .into(),
        auth_plugin_name: Some(Bytes::from_static(b"mysql_native_password")),
        ..Default::default()
    };
    let mut wire = BytesMut::new();
    login.encode(&mut wire);
    lua.globals()
        .set("LOGIN", lua.create_string(&wire).unwrap())
        .unwrap();
    run(
        &lua,
        r#"
        local H = "09A4298405EF045A61DB26DF8811FEA0E44A80FD"
        local hs = received(dpm.MYS_WAIT_AUTH, MARIADB_HANDSHAKE)
        local auth = received(dpm.MYC_WAITING, LOGIN)
        assert(auth:user() == "whee")
        assert(dpm.check_pass(auth, hs, H) == 0)
        assert(dpm.check_pass(auth, hs, "*" .. H) == 0)
        assert(dpm.check_pass(auth, hs, H:lower()) == 0)
        assert(dpm.check_pass(auth, hs, "*" .. H:lower()) == 0)
        assert(dpm.check_pass(auth, hs, "2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19") ~= 0)
        assert(dpm.check_pass(auth, dpm.new_handshake_pkt(), H) ~= 0, "another nonce")
        expect_error("Arg 3 must be a password hash", dpm.check_pass, auth, hs, "09A4")
        expect_error("Arg 3 must be a password hash", dpm.check_pass, auth, hs, nil)
        expect_error("Arg 1 must be a dpm.auth object", dpm.check_pass, hs, hs, H)
        expect_error("Arg 2 must be a dpm.handshake object", dpm.check_pass, auth, auth, H)

        -- proxy as client: crypt_pass, then the proxy as server checks it
        local mine = dpm.new_handshake_pkt()
        local a = dpm.new_auth_pkt()
        assert(dpm.check_pass(a, mine, H) ~= 0, "an empty scramble never matches")
        dpm.crypt_pass(a, mine, "toast")
        assert(dpm.check_pass(a, mine, H) == 0)
        assert(dpm.check_pass(a, mine, "*" .. H:lower()) == 0)
        dpm.crypt_pass(a, mine, "wrong")
        assert(dpm.check_pass(a, mine, H) ~= 0)
        dpm.crypt_pass(a, hs, "toast")
        local sent = received(dpm.MYC_WAITING, encode(a))
        assert(dpm.check_pass(sent, hs, H) == 0, "the wired login carries the scramble")
        dpm.crypt_pass(a, hs, "")
        assert(#encode(a) == #encode(dpm.new_auth_pkt()), "an empty password sends an empty scramble")
        expect_error("Arg 3 must be a string", dpm.crypt_pass, a, hs, nil)
        "#,
    );
}

#[test]
fn wire_packet_argument_errors() {
    let (lua, host) = env();
    let dead = host.conn_object(987_654_321, Role::Backend).unwrap();
    lua.globals().set("dead", dead).unwrap();
    run(
        &lua,
        r#"
        expect_error("Cannot write to invalid connection", dpm.wire_packet, dead, dpm.new_ok_pkt())
        expect_error("Arg 2 must be a packet object", dpm.wire_packet, dead, dead)
        expect_error("Arg 2 must be a packet object", dpm.wire_packet, dead, dpm.new_callback())
        expect_error("got table", dpm.wire_packet, dead, {})
        expect_error("Arg 1 must be a connection object", dpm.wire_packet, dpm.new_ok_pkt(), dpm.new_ok_pkt())
        "#,
    );
}

/// `wire_packet` on a live backend: the engine frames the command with sequence id 0, and
/// the object can be edited and wired again.
#[test]
fn wire_packet_writes_frames() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let (lua, _host) = env();
        lua.globals().set("PORT", port).unwrap();
        run(
            &lua,
            r#"
            backend = dpm.connect("127.0.0.1", PORT)
            local cmd = dpm.new_cmd_pkt()
            cmd:argument("select 1")
            dpm.wire_packet(backend, cmd)
            cmd:argument("select 2")
            dpm.wire_packet(backend, cmd)
            "#,
        );
        let (mut peer, _) = tokio::task::spawn_blocking(move || listener.accept())
            .await
            .unwrap()
            .unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // The first packet of an exchange: sequence id 0. (The second one's id is the
        // engine's business: this fake backend never greeted.)
        let expected = b"\x09\x00\x00\x00\x03select 1\x09\x00\x00\x00\x03select 2";
        let got = tokio::task::spawn_blocking(move || {
            let mut got = vec![0u8; expected.len()];
            peer.read_exact(&mut got).map(|_| got)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(&got[..16], &expected[..16]);
        assert_eq!(
            &got[17..],
            &expected[17..],
            "the object was edited and wired again"
        );
        drop(lua);
    });
}
