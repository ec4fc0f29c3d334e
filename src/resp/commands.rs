//! `COMMAND`'s replies and the connection-level commands that need neither IO nor the node.
//!
//! The command table itself is the core's (`sessionmesh_core::cmd::table`): every command a
//! client may send, data and connection commands alike, with Redis's arity, flags and key
//! positions. `COMMAND` reports it so clients and tools (redis-cli, cluster-aware drivers) find
//! what they expect; the server looks every command up in it once and refuses unknown commands
//! and wrong arities (at queue time inside `MULTI`, as Redis does).
//!
//! `CLIENT`, `CONFIG GET`, `COMMAND`, `ECHO`, `PING` and `SELECT` are answered here from a
//! [`ClientState`] and the server's settings. Commands that need the node or the connection's
//! socket (`INFO`, `WAIT`, `EXEC`, `QUIT`, ...) are handled by the server.

use bytes::Bytes;
use sessionmesh_core::cmd::{CommandId, Flags, Spec, TABLE};
use sessionmesh_core::{ErrorKind, Reply};

/// The Redis version clients are told they speak to: the command set and reply shapes follow
/// Redis 7.2, and some drivers pick features by this number.
pub const REDIS_VERSION: &str = "7.2.0";

/// Whether a command is refused (or held) while a restarted region restores (see
/// `Node::is_serving`): every command Redis refuses while it loads, those without the
/// `loading` flag (data commands and `WAIT` among them), and names the table does not know. A
/// `MULTI` whose queued commands were refused is aborted at `EXEC`, as in Redis.
pub fn held_while_restoring(id: Option<CommandId>) -> bool {
    id.is_none_or(|id| !id.spec().flags.contains(Flags::LOADING))
}

/// The `COMMAND INFO` entry of `spec` (Redis 7's ten fields).
pub fn info(spec: &Spec) -> Reply {
    let mut acl = vec![Reply::Simple(spec.group.acl())];
    if spec.is_write() {
        acl.push(Reply::Simple("@write"));
    } else if spec.is_data() {
        acl.push(Reply::Simple("@read"));
    }
    acl.push(Reply::Simple(if spec.flags.contains(Flags::FAST) {
        "@fast"
    } else {
        "@slow"
    }));
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Int(i64::from(spec.arity)),
        Reply::Array(
            spec.flags
                .names()
                .chain((spec.keys.numkeys > 0).then_some("movablekeys"))
                .map(Reply::Simple)
                .collect(),
        ),
        Reply::Int(spec.keys.first),
        Reply::Int(spec.keys.last),
        Reply::Int(spec.keys.step),
        Reply::Array(acl),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

/// The `COMMAND DOCS` entry of `spec`.
pub fn docs(spec: &Spec) -> Reply {
    Reply::Map(vec![
        (Reply::bulk("summary"), Reply::bulk(spec.summary)),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (Reply::bulk("group"), Reply::bulk(spec.group.name())),
    ])
}

/// The table entry for a command name, any case.
fn lookup(name: &[u8]) -> Option<&'static Spec> {
    CommandId::lookup(name).map(CommandId::spec)
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
    /// `CLIENT NO-EVICT ON`: shown in `CLIENT INFO`; nothing is evicted here anyway (no
    /// `maxmemory` eviction).
    pub no_evict: bool,
    /// `CLIENT NO-TOUCH ON`: shown in `CLIENT INFO`; keys keep no access time to leave alone.
    pub no_touch: bool,
    /// The named user it authenticated as; `None` is `default`.
    pub user: Option<Bytes>,
    /// The selected database (`SELECT`).
    pub db: u8,
}

impl ClientState {
    /// The user name `CLIENT LIST` shows and `CLIENT KILL USER` matches.
    pub fn user_name(&self) -> String {
        self.user.as_ref().map_or_else(
            || "default".to_owned(),
            |u| String::from_utf8_lossy(u).into_owned(),
        )
    }

    /// The `flags=` of `CLIENT INFO`/`LIST`: `N` for none, `e` no-evict, `T` no-touch.
    pub fn flags(&self) -> String {
        let mut f = String::new();
        if self.no_evict {
            f.push('e');
        }
        if self.no_touch {
            f.push('T');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }
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
pub fn select(args: &[Bytes], databases: u16) -> Result<u8, Reply> {
    sessionmesh_core::db::parse_index(&args[1], databases).map_err(|e| match e {
        Some(()) => Reply::err_of(ErrorKind::Value, "DB index is out of range"),
        None => Reply::not_integer(),
    })
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
        Reply::Verbatim(info_line(st).into())
    } else if is("NO-EVICT") || is("NO-TOUCH") {
        let name = if is("NO-EVICT") {
            "no-evict"
        } else {
            "no-touch"
        };
        if let Some(e) = arity(3, name) {
            return e;
        }
        let on = if args[2].eq_ignore_ascii_case(b"ON") {
            true
        } else if args[2].eq_ignore_ascii_case(b"OFF") {
            false
        } else {
            return Reply::err_of(ErrorKind::Syntax, "syntax error");
        };
        if name == "no-evict" {
            st.no_evict = on;
        } else {
            st.no_touch = on;
        }
        Reply::OK
    } else {
        unknown_subcommand(sub, "CLIENT")
    }
}

/// Redis's reply to an unknown subcommand of a container command.
pub fn unknown_subcommand(sub: &[u8], container: &str) -> Reply {
    let s = String::from_utf8_lossy(sub);
    let s: String = s.chars().take(128).collect();
    Reply::err_of(
        ErrorKind::UnknownCommand,
        format!("unknown subcommand '{s}'. Try {container} HELP."),
    )
}

/// `COMMAND [COUNT | LIST | INFO name... | DOCS [name...]]`.
pub fn command(args: &[Bytes]) -> Reply {
    let Some(sub) = args.get(1) else {
        return Reply::Array(TABLE.iter().map(info).collect());
    };
    let is = |s: &str| sub.eq_ignore_ascii_case(s.as_bytes());
    if is("COUNT") && args.len() == 2 {
        Reply::Int(TABLE.len() as i64)
    } else if is("LIST") && args.len() == 2 {
        Reply::Array(TABLE.iter().map(|s| Reply::bulk(s.name)).collect())
    } else if is("INFO") {
        if args.len() == 2 {
            return Reply::Array(TABLE.iter().map(info).collect());
        }
        Reply::Array(
            args[2..]
                .iter()
                .map(|n| lookup(n).map_or(Reply::Nil, info))
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
                .map(|s| (Reply::bulk(s.name), docs(s)))
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
