//! Encoding [`Reply`] values as RESP2 or RESP3, straight into a connection's output buffer.
//!
//! The two versions differ only where the core's replies need them to: the null is `$-1` in
//! RESP2 and `_` in RESP3, and a map is `%n` in RESP3 but a flat array of `2n` elements in
//! RESP2. Simple strings and errors have `\r` and `\n` replaced by spaces, as Redis does, so a
//! reply is always one valid frame whatever text it carries.
//!
//! It does not produce the RESP3 types the core never answers with (doubles, booleans, sets,
//! verbatim strings, pushes).

use bytes::{BufMut, BytesMut};
use sessionmesh_core::Reply;

/// The protocol version a connection speaks; `HELLO` switches it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proto {
    /// RESP2, every connection's start.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Proto {
    /// The number `HELLO` reports.
    pub fn version(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }
}

/// Appends `reply` to `out` in the given protocol.
pub fn encode(reply: &Reply, proto: Proto, out: &mut BytesMut) {
    match reply {
        Reply::Simple(s) => line(out, b'+', s.as_bytes()),
        Reply::Status(s) => line(out, b'+', s.as_bytes()),
        Reply::Error(e) => line(out, b'-', e.text().as_bytes()),
        Reply::Int(n) => header(out, b':', *n),
        Reply::Bulk(b) => {
            header(out, b'$', b.len() as i64);
            out.put_slice(b);
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim(b) => match proto {
            Proto::Resp2 => encode(&Reply::Bulk(b.clone()), proto, out),
            Proto::Resp3 => {
                header(out, b'=', b.len() as i64 + 4);
                out.put_slice(b"txt:");
                out.put_slice(b);
                out.put_slice(b"\r\n");
            }
        },
        Reply::NilArray => out.put_slice(match proto {
            Proto::Resp2 => b"*-1\r\n",
            Proto::Resp3 => b"_\r\n",
        }),
        Reply::Nil => out.put_slice(match proto {
            Proto::Resp2 => b"$-1\r\n",
            Proto::Resp3 => b"_\r\n",
        }),
        Reply::Double(x) => match proto {
            Proto::Resp2 => encode(&Reply::Bulk(x.text().into()), proto, out),
            Proto::Resp3 => line(out, b',', x.text().as_bytes()),
        },
        Reply::Pairs(pairs) => match proto {
            Proto::Resp2 => {
                header(out, b'*', 2 * pairs.len() as i64);
                for (a, b) in pairs {
                    encode(a, proto, out);
                    encode(b, proto, out);
                }
            }
            Proto::Resp3 => {
                header(out, b'*', pairs.len() as i64);
                for (a, b) in pairs {
                    header(out, b'*', 2);
                    encode(a, proto, out);
                    encode(b, proto, out);
                }
            }
        },
        Reply::Push(items) => {
            header(
                out,
                match proto {
                    Proto::Resp2 => b'*',
                    Proto::Resp3 => b'>',
                },
                items.len() as i64,
            );
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Set(items) => {
            header(
                out,
                match proto {
                    Proto::Resp2 => b'*',
                    Proto::Resp3 => b'~',
                },
                items.len() as i64,
            );
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Array(items) => {
            header(out, b'*', items.len() as i64);
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Map(pairs) => {
            match proto {
                Proto::Resp2 => header(out, b'*', 2 * pairs.len() as i64),
                Proto::Resp3 => header(out, b'%', pairs.len() as i64),
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
    }
}

/// Appends an error reply from text (which should carry its prefix, such as `ERR`).
pub fn encode_error(msg: &str, out: &mut BytesMut) {
    line(out, b'-', msg.as_bytes());
}

/// `<kind><text>\r\n`, with line breaks in `text` replaced by spaces.
fn line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

/// `<kind><n>\r\n`, formatting `n` without going through `fmt`.
fn header(out: &mut BytesMut, kind: u8, n: i64) {
    let mut digits = [0u8; 21];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        digits[i] = b'-';
    }
    out.reserve(digits.len() - i + 3);
    out.put_u8(kind);
    out.put_slice(&digits[i..]);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn enc(r: &Reply, p: Proto) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(r, p, &mut out);
        out.to_vec()
    }

    #[test]
    fn shapes() {
        assert_eq!(enc(&Reply::OK, Proto::Resp2), b"+OK\r\n");
        assert_eq!(enc(&Reply::Int(-42), Proto::Resp2), b":-42\r\n");
        assert_eq!(
            enc(&Reply::Int(i64::MIN), Proto::Resp2),
            b":-9223372036854775808\r\n"
        );
        assert_eq!(enc(&Reply::Nil, Proto::Resp2), b"$-1\r\n");
        assert_eq!(enc(&Reply::Nil, Proto::Resp3), b"_\r\n");
        assert_eq!(enc(&Reply::bulk("ab"), Proto::Resp3), b"$2\r\nab\r\n");
        let m = Reply::Map(vec![(Reply::bulk("f"), Reply::bulk("v"))]);
        assert_eq!(enc(&m, Proto::Resp2), b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
        assert_eq!(enc(&m, Proto::Resp3), b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
        let e = Reply::Error("ERR bad\r\nthing".into());
        assert_eq!(enc(&e, Proto::Resp2), b"-ERR bad  thing\r\n");
    }

    fn reply() -> impl Strategy<Value = Reply> {
        let leaf = prop_oneof![
            Just(Reply::OK),
            Just(Reply::Simple("PONG")),
            "[A-Z]{1,8} [!-~][ -~]{0,20}".prop_map(|e| Reply::Error(e.into())),
            any::<i64>().prop_map(Reply::Int),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|v| Reply::Bulk(v.into())),
            Just(Reply::Nil),
        ];
        leaf.prop_recursive(3, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Array),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Reply::Map),
            ]
        })
    }

    /// Whether an independent RESP parser (the `redis` client crate) read `v` as `r`.
    fn same(r: &Reply, v: &redis::Value, p: Proto) -> bool {
        use redis::Value as V;
        match (r, v) {
            (Reply::Simple("OK"), V::Okay) => true,
            (Reply::Simple(s), V::SimpleString(t)) => s == t,
            (Reply::Error(msg), V::ServerError(e)) => {
                let msg = msg.text();
                let (code, detail) = msg.split_once(' ').unwrap_or((msg, ""));
                e.code() == code && e.details().unwrap_or("") == detail
            }
            (Reply::Int(a), V::Int(b)) => a == b,
            (Reply::Bulk(a), V::BulkString(b)) => a[..] == b[..],
            (Reply::Nil, V::Nil) => true,
            (Reply::Array(a), V::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y, p))
            }
            (Reply::Map(a), V::Array(b)) if p == Proto::Resp2 => {
                let flat: Vec<&Reply> = a.iter().flat_map(|(k, v)| [k, v]).collect();
                flat.len() == b.len() && flat.iter().zip(b).all(|(x, y)| same(x, y, p))
            }
            (Reply::Map(a), V::Map(b)) if p == Proto::Resp3 => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((k, v), (x, y))| same(k, x, p) && same(v, y, p))
            }
            _ => false,
        }
    }

    proptest! {
        /// Every reply parses back, with the `redis` crate's own parser, to what it encodes.
        #[test]
        fn round_trip(r in reply(), resp3 in any::<bool>()) {
            let p = if resp3 { Proto::Resp3 } else { Proto::Resp2 };
            let bytes = enc(&r, p);
            let parsed = redis::parse_redis_value(&bytes).expect("valid RESP");
            prop_assert!(same(&r, &parsed, p), "{:?} read as {:?}", r, parsed);
        }

        /// Bulk payloads are binary-safe.
        #[test]
        fn bulk_binary(v in proptest::collection::vec(any::<u8>(), 0..300)) {
            let bytes = enc(&Reply::Bulk(Bytes::from(v.clone())), Proto::Resp2);
            prop_assert_eq!(redis::parse_redis_value(&bytes).unwrap(), redis::Value::BulkString(v));
        }
    }
}
