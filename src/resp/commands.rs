//! The command table and the connection-level commands that need neither IO nor the node.
//!
//! The table lists every command a client may send, with Redis's arity, flags and key
//! positions: `COMMAND` reports it so clients and tools (redis-cli, cluster-aware drivers) find
//! what they expect, and `MULTI` uses it to refuse unknown commands and wrong arities at queue
//! time, as Redis does. The data commands' own checks stay in the core; a test keeps the two
//! lists in agreement.
//!
//! `CLIENT`, `CONFIG GET`, `COMMAND`, `ECHO`, `PING` and `SELECT` are answered here from a
//! [`ClientState`] and the server's settings. Commands that need the node or the connection's
//! socket (`INFO`, `WAIT`, `EXEC`, `QUIT`, ...) are handled by the server.

use bytes::Bytes;
use sessionmesh_core::Reply;

/// The Redis version clients are told they speak to: the command set and reply shapes follow
/// Redis 7.2, and some drivers pick features by this number.
pub const REDIS_VERSION: &str = "7.2.0";

/// One entry of the command table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: the exact argument count including the name, or `-n` for at least `n`.
    pub arity: i32,
    /// Redis command flags, as `COMMAND` reports them.
    pub flags: &'static [&'static str],
    /// First key argument, last key argument (`-1`: the last argument), step; zeros: no keys.
    pub keys: (i64, i64, i64),
    /// The command group in `COMMAND DOCS`.
    pub group: &'static str,
    /// One line for `COMMAND DOCS`.
    pub summary: &'static str,
    /// Executed by the core (through the node) rather than by the server.
    pub data: bool,
}

const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const WR: &[&str] = &["write"];
const WRF: &[&str] = &["write", "fast"];
const RO: &[&str] = &["readonly"];
const ROF: &[&str] = &["readonly", "fast"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
const TX: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];

const fn data(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    group: &'static str,
    summary: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys,
        group,
        summary,
        data: true,
    }
}

const fn conn(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    group: &'static str,
    summary: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys: (0, 0, 0),
        group,
        summary,
        data: false,
    }
}

const K1: (i64, i64, i64) = (1, 1, 1);
const KALL: (i64, i64, i64) = (1, -1, 1);
const NOKEYS: (i64, i64, i64) = (0, 0, 0);

/// Every command this server accepts.
#[rustfmt::skip]
pub const TABLE: &[Spec] = &[
    data("get", 2, ROF, K1, "string", "Returns the string value of a key."),
    data("set", -3, W, K1, "string", "Sets the string value of a key, optionally with expiry and conditions."),
    data("setex", 4, W, K1, "string", "Sets the string value and expiration time in seconds of a key."),
    data("psetex", 4, W, K1, "string", "Sets the string value and expiration time in milliseconds of a key."),
    data("setnx", 3, WF, K1, "string", "Sets the string value of a key only when the key doesn't exist."),
    data("getex", -2, WRF, K1, "string", "Returns the string value of a key after setting its expiration time."),
    data("getdel", 2, WRF, K1, "string", "Returns the string value of a key after deleting the key."),
    data("mget", -2, ROF, KALL, "string", "Atomically returns the string values of one or more keys."),
    data("mset", -3, W, (1, -1, 2), "string", "Atomically creates or modifies the string values of one or more keys."),
    data("append", 3, W, K1, "string", "Appends a string to the value of a key."),
    data("strlen", 2, ROF, K1, "string", "Returns the length of a string value."),
    data("del", -2, WR, KALL, "generic", "Deletes one or more keys."),
    data("unlink", -2, WRF, KALL, "generic", "Deletes one or more keys."),
    data("exists", -2, ROF, KALL, "generic", "Determines whether one or more keys exist."),
    data("type", 2, ROF, K1, "generic", "Determines the type of value stored at a key."),
    data("rename", 3, WR, (1, 2, 1), "generic", "Renames a key and overwrites the destination."),
    data("expire", -3, WRF, K1, "generic", "Sets the expiration time of a key in seconds."),
    data("pexpire", -3, WRF, K1, "generic", "Sets the expiration time of a key in milliseconds."),
    data("expireat", -3, WRF, K1, "generic", "Sets the expiration time of a key to a Unix timestamp."),
    data("pexpireat", -3, WRF, K1, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp."),
    data("ttl", 2, ROF, K1, "generic", "Returns the expiration time in seconds of a key."),
    data("pttl", 2, ROF, K1, "generic", "Returns the expiration time in milliseconds of a key."),
    data("persist", 2, WRF, K1, "generic", "Removes the expiration time of a key."),
    data("hset", -4, WF, K1, "hash", "Creates or modifies the value of a field in a hash."),
    data("hmset", -4, WF, K1, "hash", "Sets the values of multiple fields."),
    data("hsetnx", 4, WF, K1, "hash", "Sets the value of a field in a hash only when the field doesn't exist."),
    data("hget", 3, ROF, K1, "hash", "Returns the value of a field in a hash."),
    data("hmget", -3, ROF, K1, "hash", "Returns the values of all fields in a hash."),
    data("hgetall", 2, RO, K1, "hash", "Returns all fields and values in a hash."),
    data("hdel", -3, WRF, K1, "hash", "Deletes one or more fields and their values from a hash."),
    data("hexists", 3, ROF, K1, "hash", "Determines whether a field exists in a hash."),
    data("hlen", 2, ROF, K1, "hash", "Returns the number of fields in a hash."),
    data("hkeys", 2, RO, K1, "hash", "Returns all fields in a hash."),
    data("hvals", 2, RO, K1, "hash", "Returns all values in a hash."),
    data("scan", -2, RO, NOKEYS, "generic", "Iterates over the key names in the database."),
    data("keys", 2, RO, NOKEYS, "generic", "Returns all key names that match a pattern."),
    data("dbsize", 1, ROF, NOKEYS, "server", "Returns the number of keys in the database."),
    conn("ping", -1, CONN, "connection", "Returns the server's liveliness response."),
    conn("echo", 2, CONN, "connection", "Returns the given string."),
    conn("hello", -1, CONN, "connection", "Handshakes with the server: protocol version, authentication, name."),
    conn("auth", -2, CONN, "connection", "Authenticates the connection."),
    conn("select", 2, CONN, "connection", "Changes the selected database (only 0 exists)."),
    conn("client", -2, CONN, "connection", "A container for client connection commands."),
    conn("info", -1, &["loading", "stale"], "server", "Returns information and statistics about the server."),
    conn("command", -1, &["loading", "stale"], "server", "Returns detailed information about all commands."),
    conn("config", -2, &["loading", "stale"], "server", "A container for server configuration commands."),
    conn("quit", -1, CONN, "connection", "Closes the connection."),
    conn("reset", 1, CONN, "connection", "Resets the connection."),
    conn("multi", 1, TX, "transactions", "Starts a transaction."),
    conn("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], "transactions", "Executes all commands in a transaction."),
    conn("discard", 1, TX, "transactions", "Discards a transaction."),
    conn("wait", 3, &["noscript"], "generic", "Blocks until this connection's last write is held by N other regions, or the timeout."),
];

/// The table entry for a command name, any case.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    index(name).map(|i| &TABLE[i])
}

/// Whether a command is refused (or held) while a restarted region restores (see
/// `Node::is_serving`): every command Redis refuses while it loads, those without the
/// `loading` flag (data commands and `WAIT` among them). A `MULTI` whose queued commands were
/// refused is aborted at `EXEC`, as in Redis.
pub fn held_while_restoring(name: &[u8]) -> bool {
    index(name).is_none_or(|i| !TABLE[i].flags.contains(&"loading"))
}

/// The position in [`TABLE`] of a command name, any case (metrics key their per-command
/// series by it).
pub fn index(name: &[u8]) -> Option<usize> {
    TABLE
        .iter()
        .position(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

impl Spec {
    /// Whether `argc` arguments (including the name) fit this command's arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = self.arity as i64;
        if a >= 0 {
            argc == a
        } else {
            argc >= -a
        }
    }

    /// Redis's wrong-arity error for this command.
    pub fn arity_error(&self) -> Reply {
        Reply::wrong_arity(self.name)
    }

    /// The `COMMAND INFO` entry (Redis 7's ten fields).
    pub fn info(&self) -> Reply {
        let acl: Vec<Reply> = {
            let mut v = vec![Reply::Simple(match self.group {
                "string" => "@string",
                "hash" => "@hash",
                "generic" => "@keyspace",
                "connection" => "@connection",
                "transactions" => "@transaction",
                _ => "@admin",
            })];
            if self.flags.contains(&"write") {
                v.push(Reply::Simple("@write"));
            } else if self.data {
                v.push(Reply::Simple("@read"));
            }
            if self.flags.contains(&"fast") {
                v.push(Reply::Simple("@fast"));
            } else {
                v.push(Reply::Simple("@slow"));
            }
            v
        };
        Reply::Array(vec![
            Reply::bulk(self.name),
            Reply::Int(self.arity as i64),
            Reply::Array(self.flags.iter().map(|f| Reply::Simple(f)).collect()),
            Reply::Int(self.keys.0),
            Reply::Int(self.keys.1),
            Reply::Int(self.keys.2),
            Reply::Array(acl),
            Reply::Array(vec![]),
            Reply::Array(vec![]),
            Reply::Array(vec![]),
        ])
    }

    /// The `COMMAND DOCS` entry.
    pub fn docs(&self) -> Reply {
        Reply::Map(vec![
            (Reply::bulk("summary"), Reply::bulk(self.summary)),
            (Reply::bulk("since"), Reply::bulk("1.0.0")),
            (Reply::bulk("group"), Reply::bulk(self.group)),
        ])
    }
}

/// The per-connection state that connection commands read and change.
#[derive(Debug, Default, Clone)]
pub struct ClientState {
    /// Server-unique id (`CLIENT ID`).
    pub id: u64,
    /// `CLIENT SETNAME`.
    pub name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Option<Bytes>,
}

/// `PING [message]`.
pub fn ping(args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        return Reply::wrong_arity("ping");
    }
    match args.get(1) {
        None => Reply::Simple("PONG"),
        Some(m) => Reply::Bulk(m.clone()),
    }
}

/// `SELECT index`: only database 0 exists.
pub fn select(args: &[Bytes]) -> Reply {
    match sessionmesh_core::cmd::parse_i64(&args[1]) {
        Some(0) => Reply::OK,
        Some(_) => Reply::err("DB index is out of range"),
        None => Reply::not_integer(),
    }
}

/// Whether a client name (or library name/version) is acceptable: printable, no spaces.
pub fn valid_name(n: &[u8]) -> bool {
    n.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

/// `CLIENT SETNAME | GETNAME | ID | SETINFO | INFO`.
pub fn client(
    args: &[Bytes],
    st: &mut ClientState,
    info_line: impl FnOnce(&ClientState) -> String,
) -> Reply {
    let sub = &args[1];
    let is = |s: &str| sub.eq_ignore_ascii_case(s.as_bytes());
    let arity = |n: usize, name: &str| {
        (args.len() != n).then(|| Reply::wrong_arity(&format!("client|{name}")))
    };
    if is("SETNAME") {
        if let Some(e) = arity(3, "setname") {
            return e;
        }
        let n = &args[2];
        if !valid_name(n) {
            return Reply::err(
                "Client names cannot contain spaces, newlines or special characters.",
            );
        }
        st.name = (!n.is_empty()).then(|| n.clone());
        Reply::OK
    } else if is("GETNAME") {
        if let Some(e) = arity(2, "getname") {
            return e;
        }
        Reply::opt(st.name.clone())
    } else if is("ID") {
        if let Some(e) = arity(2, "id") {
            return e;
        }
        Reply::Int(st.id as i64)
    } else if is("SETINFO") {
        if let Some(e) = arity(4, "setinfo") {
            return e;
        }
        let attr = &args[2];
        let val = &args[3];
        let slot = if attr.eq_ignore_ascii_case(b"LIB-NAME") {
            &mut st.lib_name
        } else if attr.eq_ignore_ascii_case(b"LIB-VER") {
            &mut st.lib_ver
        } else {
            return Reply::err(format!(
                "Unrecognized option '{}'",
                String::from_utf8_lossy(attr)
            ));
        };
        if !valid_name(val) {
            return Reply::err(format!(
                "{} cannot contain spaces, newlines or special characters.",
                String::from_utf8_lossy(attr)
            ));
        }
        *slot = (!val.is_empty()).then(|| val.clone());
        Reply::OK
    } else if is("INFO") {
        if let Some(e) = arity(2, "info") {
            return e;
        }
        Reply::bulk(info_line(st))
    } else {
        unknown_subcommand(sub, "CLIENT")
    }
}

/// Redis's reply to an unknown subcommand of a container command.
pub fn unknown_subcommand(sub: &[u8], container: &str) -> Reply {
    let s = String::from_utf8_lossy(sub);
    let s: String = s.chars().take(128).collect();
    Reply::err(format!("unknown subcommand '{s}'. Try {container} HELP."))
}

/// `COMMAND [COUNT | LIST | INFO name... | DOCS [name...]]`.
pub fn command(args: &[Bytes]) -> Reply {
    let Some(sub) = args.get(1) else {
        return Reply::Array(TABLE.iter().map(Spec::info).collect());
    };
    let is = |s: &str| sub.eq_ignore_ascii_case(s.as_bytes());
    if is("COUNT") && args.len() == 2 {
        Reply::Int(TABLE.len() as i64)
    } else if is("LIST") && args.len() == 2 {
        Reply::Array(TABLE.iter().map(|s| Reply::bulk(s.name)).collect())
    } else if is("INFO") {
        if args.len() == 2 {
            return Reply::Array(TABLE.iter().map(Spec::info).collect());
        }
        Reply::Array(
            args[2..]
                .iter()
                .map(|n| lookup(n).map_or(Reply::Nil, Spec::info))
                .collect(),
        )
    } else if is("DOCS") {
        let specs: Vec<&Spec> = if args.len() == 2 {
            TABLE.iter().collect()
        } else {
            args[2..].iter().filter_map(|n| lookup(n)).collect()
        };
        Reply::Map(
            specs
                .into_iter()
                .map(|s| (Reply::bulk(s.name), s.docs()))
                .collect(),
        )
    } else if is("COUNT") || is("LIST") {
        Reply::wrong_arity(&format!(
            "command|{}",
            String::from_utf8_lossy(sub).to_lowercase()
        ))
    } else {
        unknown_subcommand(sub, "COMMAND")
    }
}

/// `CONFIG GET pattern...` over the given `(name, value)` parameters, with Redis's glob rules.
pub fn config(args: &[Bytes], params: &[(&str, String)]) -> Reply {
    let sub = &args[1];
    if !sub.eq_ignore_ascii_case(b"GET") {
        return unknown_subcommand(sub, "CONFIG");
    }
    if args.len() < 3 {
        return Reply::wrong_arity("config|get");
    }
    let mut out = Vec::new();
    for (name, value) in params {
        // Redis matches parameter names case-insensitively.
        let hit = args[2..].iter().any(|p| {
            sessionmesh_core::cmd::glob::matches(&p.to_ascii_lowercase(), name.as_bytes())
        });
        if hit {
            out.push((Reply::bulk(name.to_string()), Reply::bulk(value.clone())));
        }
    }
    Reply::Map(out)
}

/// Compares secrets in time independent of where they differ.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<Bytes> {
        s.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    /// The table's data commands are exactly the core's, and nothing else is.
    #[test]
    fn table_matches_core() {
        for s in TABLE {
            assert_eq!(
                sessionmesh_core::cmd::is_data_command(s.name.as_bytes()),
                s.data,
                "{}",
                s.name
            );
            if s.data {
                assert_eq!(
                    sessionmesh_core::cmd::is_write(s.name.as_bytes()),
                    s.flags.contains(&"write"),
                    "{}",
                    s.name
                );
            }
        }
        let mut names: Vec<&str> = TABLE.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }

    #[test]
    fn arity() {
        let get = lookup(b"GeT").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(3));
        let set = lookup(b"set").unwrap();
        assert!(set.arity_ok(3) && set.arity_ok(9) && !set.arity_ok(2));
    }

    #[test]
    fn client_names() {
        let mut st = ClientState::default();
        let r = client(&args(&["client", "setname", "a b"]), &mut st, |_| {
            String::new()
        });
        assert!(r.is_error());
        assert_eq!(
            client(&args(&["CLIENT", "SETNAME", "web"]), &mut st, |_| {
                String::new()
            }),
            Reply::OK
        );
        assert_eq!(
            client(&args(&["client", "getname"]), &mut st, |_| String::new()),
            Reply::bulk("web")
        );
        assert_eq!(
            client(&args(&["client", "nope"]), &mut st, |_| String::new()),
            Reply::err("unknown subcommand 'nope'. Try CLIENT HELP.")
        );
    }

    #[test]
    fn config_glob() {
        let params = [
            ("maxclients", "10".to_string()),
            ("timeout", "0".to_string()),
        ];
        let r = config(&args(&["config", "get", "MAX*"]), &params);
        assert_eq!(
            r,
            Reply::Map(vec![(Reply::bulk("maxclients"), Reply::bulk("10"))])
        );
        assert_eq!(
            config(&args(&["config", "get", "nope"]), &params),
            Reply::Map(vec![])
        );
    }
}
