//! Proptest strategies shared by the unit tests (compiled for tests only).

use bytes::Bytes;
use proptest::prelude::*;

use crate::caps::*;
use crate::column_type as ct;
use crate::status::SERVER_SESSION_STATE_CHANGED;
use crate::*;

/// Arbitrary payload bytes for "never panics" tests, biased towards protocol-looking data.
pub fn arb_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(
            prop_oneof![
                Just(0u8),
                Just(0xFB),
                Just(0xFC),
                Just(0xFE),
                Just(0xFF),
                any::<u8>()
            ],
            0..64
        ),
    ]
}

/// Arbitrary bytes as [`Bytes`].
pub fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Bytes without NUL (for NUL-terminated strings).
pub fn arb_cstr(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(1u8..=255, 0..=max).prop_map(Bytes::from)
}

/// A capability set as a peer would send it: no extended bits when `CLIENT_MYSQL` is set.
pub fn canonical_caps(caps: u64) -> u64 {
    if caps & CLIENT_MYSQL != 0 {
        caps & 0xFFFF_FFFF
    } else {
        caps
    }
}

/// Arbitrary canonical capabilities.
pub fn arb_caps() -> impl Strategy<Value = u64> {
    any::<u64>().prop_map(canonical_caps)
}

fn arb_attrs() -> impl Strategy<Value = Vec<(Bytes, Bytes)>> {
    proptest::collection::vec((arb_bytes(20), arb_bytes(40)), 0..4)
}

/// Handshakes whose fields are consistent with their capabilities.
pub fn arb_handshake() -> impl Strategy<Value = HandshakeV10> {
    (
        arb_caps(),
        arb_cstr(40),
        any::<u32>(),
        any::<u8>(),
        any::<u16>(),
        arb_cstr(30),
    )
        .prop_flat_map(|(caps, version, id, cs, status, plugin)| {
            let max = if caps & CLIENT_SECURE_CONNECTION == 0 {
                8
            } else if caps & CLIENT_PLUGIN_AUTH == 0 {
                20
            } else {
                32
            };
            proptest::collection::vec(1u8..=255, 8..=max).prop_map(move |data| HandshakeV10 {
                protocol_version: 10,
                server_version: version.clone(),
                connection_id: id,
                auth_plugin_data: Bytes::from(data),
                capabilities: caps,
                character_set: cs,
                status_flags: status,
                auth_plugin_name: (caps & CLIENT_PLUGIN_AUTH != 0).then(|| plugin.clone()),
            })
        })
}

/// Handshake responses consistent with their capabilities.
pub fn arb_handshake_response() -> impl Strategy<Value = HandshakeResponse41> {
    (
        arb_caps().prop_map(|c| c | CLIENT_PROTOCOL_41),
        any::<u32>(),
        any::<u8>(),
        arb_cstr(30),
        arb_bytes(300),
        arb_cstr(20),
        arb_cstr(20),
        arb_attrs(),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(caps, max, cs, user, auth, db, plugin, attrs, zstd)| {
            let auth = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
                auth
            } else if caps & CLIENT_SECURE_CONNECTION != 0 {
                auth.slice(..auth.len().min(255))
            } else {
                Bytes::from(
                    auth.iter()
                        .copied()
                        .filter(|&b| b != 0)
                        .collect::<Vec<u8>>(),
                )
            };
            HandshakeResponse41 {
                capabilities: caps,
                max_packet_size: max,
                character_set: cs,
                username: user,
                auth_response: auth,
                database: (caps & CLIENT_CONNECT_WITH_DB != 0).then_some(db),
                auth_plugin_name: (caps & CLIENT_PLUGIN_AUTH != 0).then_some(plugin),
                connect_attrs: if caps & CLIENT_CONNECT_ATTRS != 0 {
                    attrs
                } else {
                    Vec::new()
                },
                zstd_compression_level: zstd
                    .filter(|_| caps & CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0),
            }
        })
}

/// `COM_CHANGE_USER` packets with the capabilities to encode them.
pub fn arb_change_user() -> impl Strategy<Value = (ComChangeUser, u64)> {
    (
        arb_caps(),
        arb_cstr(20),
        arb_bytes(300),
        arb_cstr(20),
        proptest::option::of(any::<u16>()),
        arb_cstr(20),
        arb_attrs(),
    )
        .prop_map(|(caps, user, auth, db, cs, plugin, attrs)| {
            let auth = if caps & CLIENT_SECURE_CONNECTION != 0 {
                auth.slice(..auth.len().min(255))
            } else {
                Bytes::from(
                    auth.iter()
                        .copied()
                        .filter(|&b| b != 0)
                        .collect::<Vec<u8>>(),
                )
            };
            let c = ComChangeUser {
                username: user,
                auth_response: auth,
                database: db,
                character_set: cs,
                auth_plugin_name: (cs.is_some() && caps & CLIENT_PLUGIN_AUTH != 0)
                    .then_some(plugin),
                connect_attrs: if cs.is_some() && caps & CLIENT_CONNECT_ATTRS != 0 {
                    attrs
                } else {
                    Vec::new()
                },
            };
            (c, caps)
        })
}

/// Any session-state entry.
pub fn arb_session_change() -> impl Strategy<Value = SessionStateChange> {
    prop_oneof![
        (arb_bytes(20), arb_bytes(40))
            .prop_map(|(name, value)| SessionStateChange::SystemVariable { name, value }),
        arb_bytes(20).prop_map(|name| SessionStateChange::Schema { name }),
        arb_bytes(2).prop_map(|tracked| SessionStateChange::StateChange { tracked }),
        (any::<u8>(), arb_bytes(80))
            .prop_map(|(encoding, gtids)| SessionStateChange::Gtids { encoding, gtids }),
        arb_bytes(60).prop_map(
            |characteristics| SessionStateChange::TransactionCharacteristics { characteristics }
        ),
        arb_bytes(8).prop_map(|state| SessionStateChange::TransactionState { state }),
        (6u8..=255, arb_bytes(30))
            .prop_map(|(kind, data)| SessionStateChange::Unknown { kind, data }),
    ]
}

/// OK packets with the capabilities to encode them.
pub fn arb_ok_packet() -> impl Strategy<Value = (OkPacket, u64)> {
    (
        prop_oneof![
            Just(0u64),
            Just(CLIENT_TRANSACTIONS),
            Just(CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS),
            Just(CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SESSION_TRACK),
            Just(CLIENT_PROTOCOL_41 | CLIENT_SESSION_TRACK | CLIENT_DEPRECATE_EOF),
        ],
        prop_oneof![Just(0x00u8), Just(0xFE)],
        any::<u64>(),
        any::<u64>(),
        any::<u16>(),
        any::<u16>(),
        arb_bytes(60),
        proptest::option::of(proptest::collection::vec(arb_session_change(), 0..4)),
    )
        .prop_map(
            |(caps, header, affected, last, status, warnings, info, state)| {
                let p41 = caps & CLIENT_PROTOCOL_41 != 0;
                let tx = caps & CLIENT_TRANSACTIONS != 0;
                let track = caps & CLIENT_SESSION_TRACK != 0;
                let status = if p41 || tx { status } else { 0 };
                let ok = OkPacket {
                    header,
                    affected_rows: affected,
                    last_insert_id: last,
                    status_flags: status,
                    warnings: if p41 { warnings } else { 0 },
                    info,
                    session_state_changes: state
                        .filter(|_| track && status & SERVER_SESSION_STATE_CHANGED != 0)
                        .map(|s| encode_session_state(&s)),
                };
                (ok, caps)
            },
        )
}

/// ERR packets that re-decode identically.
pub fn arb_err_packet() -> impl Strategy<Value = ErrPacket> {
    (
        any::<u16>(),
        proptest::option::of(any::<[u8; 5]>()),
        arb_bytes(100),
    )
        .prop_map(|(code, state, msg)| {
            // Without a sqlstate, a message starting with '#' would read back as one:
            // the wire cannot carry it, so the generator leaves every leading '#' out.
            let msg = if state.is_none() {
                let hashes = msg.iter().take_while(|&&b| b == b'#').count();
                msg.slice(hashes..)
            } else {
                msg
            };
            ErrPacket {
                code,
                sql_state: state,
                message: msg,
            }
        })
}

/// Column definitions with the capabilities to encode them.
pub fn arb_column_definition() -> impl Strategy<Value = (ColumnDefinition41, u64)> {
    (
        prop_oneof![Just(0u64), Just(MARIADB_CLIENT_EXTENDED_METADATA)],
        proptest::collection::vec(arb_bytes(30), 7),
        (
            any::<u16>(),
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            any::<u8>(),
        ),
        proptest::option::of(proptest::option::of(arb_bytes(30))),
    )
        .prop_map(|(caps, s, (cs, len, ty, flags, dec), default)| {
            let c = ColumnDefinition41 {
                catalog: s[0].clone(),
                schema: s[1].clone(),
                table: s[2].clone(),
                org_table: s[3].clone(),
                name: s[4].clone(),
                org_name: s[5].clone(),
                extended_metadata: (caps != 0).then(|| s[6].clone()),
                character_set: cs,
                column_length: len,
                column_type: ty,
                flags,
                decimals: dec,
                default_value: default,
            };
            (c, caps)
        })
}

fn arb_f32() -> impl Strategy<Value = f32> {
    use proptest::num::f32 as f;
    f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO | f::INFINITE
}

fn arb_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO | f::INFINITE
}

fn arb_datetime() -> impl Strategy<Value = DateTime> {
    (
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        0u8..5,
    )
        .prop_map(
            |(year, month, day, hour, minute, second, microsecond, shape)| {
                // Bias towards the shorter encodings.
                let mut d = DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    microsecond,
                };
                if shape == 0 {
                    d = DateTime::default();
                }
                if shape <= 1 {
                    d.hour = 0;
                    d.minute = 0;
                    d.second = 0;
                }
                if shape <= 2 {
                    d.microsecond = 0;
                }
                d
            },
        )
}

fn arb_time() -> impl Strategy<Value = Time> {
    (
        any::<bool>(),
        any::<u32>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        0u8..4,
    )
        .prop_map(
            |(negative, days, hours, minutes, seconds, microseconds, shape)| {
                let mut t = Time {
                    negative,
                    days,
                    hours,
                    minutes,
                    seconds,
                    microseconds,
                };
                if shape == 0 {
                    t = Time::default();
                }
                if shape <= 1 {
                    t.microseconds = 0;
                }
                t
            },
        )
}

/// A column type and a non-NULL value of that type (`Null` for `MYSQL_TYPE_NULL`).
pub fn arb_typed_value() -> impl Strategy<Value = (u8, BinaryValue)> {
    prop_oneof![
        any::<u8>().prop_map(|v| (ct::TINY, BinaryValue::Int1(v))),
        (prop_oneof![Just(ct::SHORT), Just(ct::YEAR)], any::<u16>())
            .prop_map(|(t, v)| (t, BinaryValue::Int2(v))),
        (prop_oneof![Just(ct::LONG), Just(ct::INT24)], any::<u32>())
            .prop_map(|(t, v)| (t, BinaryValue::Int4(v))),
        any::<u64>().prop_map(|v| (ct::LONGLONG, BinaryValue::Int8(v))),
        arb_f32().prop_map(|v| (ct::FLOAT, BinaryValue::Float(v))),
        arb_f64().prop_map(|v| (ct::DOUBLE, BinaryValue::Double(v))),
        Just((ct::NULL, BinaryValue::Null)),
        (
            prop_oneof![
                Just(ct::DATE),
                Just(ct::DATETIME),
                Just(ct::TIMESTAMP),
                Just(ct::NEWDATE)
            ],
            arb_datetime()
        )
            .prop_map(|(t, v)| (t, BinaryValue::DateTime(v))),
        arb_time().prop_map(|v| (ct::TIME, BinaryValue::Time(v))),
        (
            prop_oneof![
                Just(ct::VAR_STRING),
                Just(ct::STRING),
                Just(ct::BLOB),
                Just(ct::NEWDECIMAL),
                Just(ct::JSON),
                Just(ct::BIT),
                Just(ct::GEOMETRY),
                Just(ct::DECIMAL),
                Just(100u8)
            ],
            arb_bytes(300)
        )
            .prop_map(|(t, v)| (t, BinaryValue::Bytes(v))),
    ]
}

/// Like [`arb_typed_value`], sometimes NULL.
pub fn arb_typed_value_or_null() -> impl Strategy<Value = (u8, BinaryValue)> {
    (arb_typed_value(), any::<u8>()).prop_map(|((t, v), r)| {
        if r < 48 {
            (t, BinaryValue::Null)
        } else {
            (t, v)
        }
    })
}

/// `COM_STMT_EXECUTE` packets, with the parameter count and capabilities to decode them.
pub fn arb_stmt_execute() -> impl Strategy<Value = (ComStmtExecute, usize, u64)> {
    (
        arb_caps(),
        any::<u32>(),
        any::<u8>(),
        any::<u32>(),
        0usize..6,
        0usize..3,
    )
        .prop_flat_map(|(caps, id, flags, iters, num_params, extra)| {
            let qa = caps & CLIENT_QUERY_ATTRIBUTES != 0;
            let explicit = qa && (num_params > 0 || flags & 8 != 0);
            let count = if explicit {
                num_params + extra
            } else {
                num_params
            };
            (
                proptest::collection::vec(any::<u8>(), count.div_ceil(8)),
                any::<bool>(),
                proptest::collection::vec((any::<u8>(), any::<u8>(), arb_bytes(10)), count),
                arb_bytes(50),
            )
                .prop_map(move |(bitmap, bound, types, values)| {
                    let e = ComStmtExecute {
                        statement_id: id,
                        flags,
                        iteration_count: iters,
                        parameter_count: explicit.then_some(count as u64),
                        null_bitmap: Bytes::from(bitmap),
                        new_params_bound: count > 0 && bound,
                        param_types: if count > 0 && bound {
                            types
                                .into_iter()
                                .map(|(column_type, flags, name)| ParamType {
                                    column_type,
                                    flags,
                                    name: qa.then_some(name),
                                })
                                .collect()
                        } else {
                            Vec::new()
                        },
                        values,
                    };
                    (e, num_params, caps)
                })
        })
}

/// `COM_QUERY` packets with the capabilities to encode them.
pub fn arb_com_query() -> impl Strategy<Value = (ComQuery, u64)> {
    (
        arb_caps(),
        arb_bytes(200),
        proptest::collection::vec((arb_bytes(12), arb_typed_value_or_null()), 0..4),
        any::<u64>(),
    )
        .prop_map(|(caps, query, attrs, sets)| {
            let attributes = (caps & CLIENT_QUERY_ATTRIBUTES != 0).then(|| {
                let pairs: Vec<(Bytes, BinaryValue)> =
                    attrs.into_iter().map(|(n, (_, v))| (n, v)).collect();
                let mut a = QueryAttributes::new(&pairs);
                a.parameter_set_count = sets;
                a
            });
            (ComQuery { query, attributes }, caps)
        })
}
