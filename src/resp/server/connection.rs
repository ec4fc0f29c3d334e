//! The connection commands a [`Conn`] answers itself, with no IO: `HELLO`, `AUTH`, `CLIENT`,
//! `INFO`, `CONFIG GET` and the rest of [`Conn::connection_command`].

use super::settings;
use super::*;

impl<B: Backend> Conn<B> {
    /// The connection commands that need no IO, inside or outside a transaction.
    pub(super) fn connection_command(&mut self, cmd: &Command) -> Reply {
        let args = cmd.args();
        match cmd.id().name() {
            "ping" => commands::ping(args),
            "echo" => Reply::Bulk(args[1].clone()),
            // Inside `MULTI`, as on its own.
            "publish" => Reply::Int(self.backend.publish(&args[1], &args[2]) as i64),
            "pubsub" => self.pubsub(args),
            "select" => match commands::select(args, self.shared.opts.limits.databases) {
                Ok(db) => {
                    self.client.db = db;
                    Reply::OK
                }
                Err(e) => e,
            },
            "unwatch" => {
                self.watched.clear();
                Reply::OK
            }
            "hello" => self.hello(args),
            "auth" => self.auth(args),
            "client" if args[1].eq_ignore_ascii_case(b"list") => self.client_list(args),
            "client" if args[1].eq_ignore_ascii_case(b"kill") => self.client_kill(args),
            "client" => {
                let line = |st: &ClientState| self.client_line(st);
                let mut st = self.client.clone();
                let r = commands::client(args, &mut st, line);
                self.client = st;
                r
            }
            "info" => Reply::Verbatim(self.info(args).into()),
            "command" => commands::command(args),
            "config" if args[1].eq_ignore_ascii_case(b"set") => {
                let r = self.shared.settings.set(args);
                if r == Reply::OK {
                    self.backend
                        .set_notify(self.shared.settings.notify_keyspace_classes());
                }
                r
            }
            // Nothing to reset: the node's statistics are Prometheus counters, which only grow.
            "config" if args[1].eq_ignore_ascii_case(b"resetstat") => match args.len() {
                2 => Reply::OK,
                _ => Reply::wrong_arity("config|resetstat"),
            },
            "config" => commands::config(args, &self.config_params()),
            "time" => settings::time(),
            "save" => self.backend.save(),
            "bgsave" => match args.get(1) {
                None => self.backend.bgsave(),
                Some(a) if a.eq_ignore_ascii_case(b"schedule") && args.len() == 2 => {
                    self.backend.bgsave()
                }
                Some(_) => Reply::err_of(ErrorKind::Syntax, "syntax error"),
            },
            "lastsave" => Reply::Int(self.backend.last_save()),
            "script" if args.len() == 2 && args[1].eq_ignore_ascii_case(b"kill") => {
                self.shared.scripts.kill(self.client.id)
            }
            "script" => crate::script::script_command(args, &self.shared.scripts),
            other => Reply::err(format!("'{other}' cannot be used here")),
        }
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    pub(super) fn hello(&mut self, args: &[Bytes]) -> Reply {
        let mut proto = self.proto;
        let mut i = 1;
        if let Some(v) = args.get(1) {
            proto = match sessionmesh_core::cmd::parse_i64(v) {
                None => {
                    return Reply::err_of(
                        ErrorKind::Value,
                        "Protocol version is not an integer or out of range",
                    )
                }
                Some(2) => Proto::Resp2,
                Some(3) => Proto::Resp3,
                Some(_) => {
                    return Reply::error(ErrorKind::Other, "NOPROTO unsupported protocol version")
                }
            };
            i = 2;
        }
        let (mut auth, mut name) = (None, None);
        while i < args.len() {
            let more = args.len() - i - 1;
            if args[i].eq_ignore_ascii_case(b"AUTH") && more >= 2 {
                auth = Some((&args[i + 1], &args[i + 2]));
                i += 3;
            } else if args[i].eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
                name = Some(&args[i + 1]);
                i += 2;
            } else {
                return Reply::err_of(
                    ErrorKind::Syntax,
                    format!(
                        "Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&args[i])
                    ),
                );
            }
        }
        if let Some((user, pass)) = auth {
            if let Err(e) = self.check_auth(Some(user), pass) {
                return e;
            }
            self.client.user = (&user[..] != b"default").then(|| user.clone());
            self.authed = true;
            self.apply_auth_limits();
        } else if !self.authed {
            return Reply::error(
                ErrorKind::Auth,
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                 HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client \
                 and select the RESP protocol version at the same time",
            );
        }
        if let Some(n) = name {
            if !commands::valid_name(n) {
                return Reply::err(
                    "Client names cannot contain spaces, newlines or special characters.",
                );
            }
            self.client.name = (!n.is_empty()).then(|| n.clone());
        }
        self.proto = proto;
        Reply::Map(vec![
            (Reply::bulk("server"), Reply::bulk("redis")),
            (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
            (Reply::bulk("proto"), Reply::Int(proto.version())),
            (Reply::bulk("id"), Reply::Int(self.client.id as i64)),
            (Reply::bulk("mode"), Reply::bulk("standalone")),
            (Reply::bulk("role"), Reply::bulk("master")),
            (Reply::bulk("modules"), Reply::Array(vec![])),
        ])
    }

    /// `AUTH [user] password`.
    pub(super) fn auth(&mut self, args: &[Bytes]) -> Reply {
        let res = match args.len() {
            2 => self.check_auth(None, &args[1]),
            3 => self.check_auth(Some(&args[1]), &args[2]),
            _ => return Reply::syntax(),
        };
        match res {
            Ok(()) => {
                self.client.user =
                    (args.len() == 3 && &args[1][..] != b"default").then(|| args[1].clone());
                self.authed = true;
                self.apply_auth_limits();
                Reply::OK
            }
            Err(e) => e,
        }
    }

    /// Checks credentials: a named user from the configured users, or the `default` user
    /// against `requirepass`.
    #[allow(
        clippy::expect_used,
        reason = "the default user is handled before this point"
    )]
    pub(super) fn check_auth(&self, user: Option<&Bytes>, pass: &[u8]) -> Result<(), Reply> {
        let wrong = || {
            Reply::error(
                ErrorKind::Auth,
                "WRONGPASS invalid username-password pair or user is disabled.",
            )
        };
        let default_user = user.is_none_or(|u| &u[..] == b"default");
        let opts = &self.shared.opts;
        if !default_user {
            let name = user.expect("not the default user");
            return match opts.users.get(name) {
                Some(pw) if commands::secret_eq(pass, pw) => Ok(()),
                _ => Err(wrong()),
            };
        }
        if opts.requirepass.is_none() && !opts.users.is_empty() {
            // With named users and no requirepass, the default user is disabled.
            return Err(wrong());
        }
        match &opts.requirepass {
            None if user.is_none() => Err(Reply::err_of(
                ErrorKind::Auth,
                "AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            )),
            // Without a password the default user accepts any password, as in Redis.
            None if default_user => Ok(()),
            Some(pw) if default_user && commands::secret_eq(pass, pw) => Ok(()),
            _ => Err(wrong()),
        }
    }

    /// Redis gives clients that have not authenticated yet tiny limits, so they cannot make
    /// the server buffer anything large.
    pub(super) fn apply_auth_limits(&mut self) {
        let l = &self.shared.opts.limits;
        if self.authed {
            self.decoder.set_limits(l.max_bulk_len, l.max_array_len);
        } else {
            self.decoder
                .set_limits(l.max_bulk_len.min(16 * 1024), l.max_array_len.min(10));
        }
    }

    /// Copies this connection's `CLIENT INFO` line into the server's registry.
    pub(super) fn publish(&self) {
        let line = self.client_line(&self.client);
        self.shared
            .registry
            .update(self.client.id, line, &self.client.user_name());
    }

    /// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]`, as Redis 7 parses it.
    pub(super) fn client_list(&mut self, args: &[Bytes]) -> Reply {
        let mut ids: Option<Vec<u64>> = None;
        let mut none = false;
        let mut i = 2;
        while i < args.len() {
            let opt = &args[i];
            if opt.eq_ignore_ascii_case(b"type") && i + 1 < args.len() {
                match client_type(&args[i + 1]) {
                    Ok(normal) => none |= !normal,
                    Err(e) => return e,
                }
                i += 2;
            } else if opt.eq_ignore_ascii_case(b"id") && i + 1 < args.len() {
                let mut v = Vec::new();
                for a in &args[i + 1..] {
                    match commands_id(a) {
                        Some(id) => v.push(id),
                        None => return Reply::err("Invalid client ID"),
                    }
                }
                ids = Some(v);
                i = args.len();
            } else {
                return Reply::syntax();
            }
        }
        if none {
            return Reply::Verbatim(bytes::Bytes::new());
        }
        // This connection's own line is fresh; the others' are as of their last connection
        // command.
        self.publish();
        Reply::Verbatim(self.shared.registry.list(ids.as_deref()).into())
    }

    /// `CLIENT KILL ip:port` (old form: `OK` or `No such client`) and `CLIENT KILL <filter
    /// value> ...` (`ID`, `TYPE`, `USER`, `ADDR`, `LADDR`, `SKIPME`, `MAXAGE`: the count).
    pub(super) fn client_kill(&mut self, args: &[Bytes]) -> Reply {
        use super::clients::KillFilter;
        let me = self.client.id;
        if args.len() == 3 {
            let f = KillFilter {
                addr: Some(String::from_utf8_lossy(&args[2]).into_owned()),
                ..KillFilter::default()
            };
            let (n, killed_me) = self.shared.registry.kill(&f, me);
            self.kill_me |= killed_me;
            return if n == 0 {
                Reply::err("No such client")
            } else {
                Reply::OK
            };
        }
        if args.len() < 3 {
            return Reply::wrong_arity("client|kill");
        }
        let mut f = KillFilter {
            skip_me: true,
            ..KillFilter::default()
        };
        let mut i = 2;
        while i < args.len() {
            let (opt, Some(v)) = (&args[i], args.get(i + 1)) else {
                return Reply::syntax();
            };
            let text = || String::from_utf8_lossy(v).into_owned();
            if opt.eq_ignore_ascii_case(b"id") {
                match sessionmesh_core::cmd::parse_i64(v) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Reply::err("client-id should be greater than 0"),
                }
            } else if opt.eq_ignore_ascii_case(b"type") {
                match client_type(v) {
                    Ok(normal) => f.none |= !normal,
                    Err(e) => return e,
                }
            } else if opt.eq_ignore_ascii_case(b"user") {
                let known = &v[..] == b"default" || self.shared.opts.users.contains_key(v);
                if !known {
                    return Reply::err(format!("No such user '{}'", text()));
                }
                f.user = Some(text());
            } else if opt.eq_ignore_ascii_case(b"addr") {
                f.addr = Some(text());
            } else if opt.eq_ignore_ascii_case(b"laddr") {
                f.laddr = Some(text());
            } else if opt.eq_ignore_ascii_case(b"skipme") {
                if v.eq_ignore_ascii_case(b"yes") {
                    f.skip_me = true;
                } else if v.eq_ignore_ascii_case(b"no") {
                    f.skip_me = false;
                } else {
                    return Reply::syntax();
                }
            } else if opt.eq_ignore_ascii_case(b"maxage") {
                match sessionmesh_core::cmd::parse_i64(v) {
                    Some(n) if n >= 0 => f.max_age_secs = Some(n as u64),
                    _ => return Reply::syntax(),
                }
            } else {
                return Reply::syntax();
            }
            i += 2;
        }
        let (n, killed_me) = self.shared.registry.kill(&f, me);
        self.kill_me |= killed_me;
        Reply::Int(n as i64)
    }

    /// `CLIENT INFO`'s line for this connection.
    pub(super) fn client_line(&self, st: &ClientState) -> String {
        let s = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        format!(
            "id={} addr={} laddr=127.0.0.1:{} name={} flags={} db={} multi={} user={} resp={} lib-name={} lib-ver={}\n",
            st.id,
            self.peer,
            self.shared.port,
            s(&st.name),
            st.flags(),
            st.db,
            self.multi.as_ref().map_or(-1, |m| m.queue.len() as i64),
            st.user_name(),
            self.proto.version(),
            s(&st.lib_name),
            s(&st.lib_ver),
        )
    }

    /// `INFO [section...]`: server, clients, keyspace, replication.
    pub(super) fn info(&self, args: &[Bytes]) -> String {
        const ALL: [&str; 4] = ["server", "clients", "keyspace", "replication"];
        let wanted = |sec: &str| {
            args.len() == 1
                || args[1..].iter().any(|a| {
                    a.eq_ignore_ascii_case(sec.as_bytes())
                        || ["all", "everything", "default"]
                            .iter()
                            .any(|w| a.eq_ignore_ascii_case(w.as_bytes()))
                })
        };
        let mut out = String::new();
        for sec in ALL.into_iter().filter(|s| wanted(s)) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            out.push_str(&self.info_section(sec));
        }
        out
    }

    pub(super) fn info_section(&self, sec: &str) -> String {
        let uptime = self.shared.started.elapsed().as_secs();
        match sec {
            "server" => format!(
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nsessionmesh_version:{}\r\n\
                 redis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nprocess_id:{}\r\n\
                 tcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nregion:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                self.shared.port,
                uptime / 86_400,
                self.backend.region_name(),
            ),
            "clients" => format!(
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n",
                self.shared.clients.load(Ordering::Relaxed),
                self.shared.opts.limits.max_clients,
            ),
            "keyspace" => {
                let mut s = "# Keyspace\r\n".to_string();
                for (db, keys, expires) in self.backend.keyspace() {
                    s.push_str(&format!(
                        "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n"
                    ));
                }
                s
            }
            _ => {
                let s = self.backend.info_replication();
                if s.starts_with('#') {
                    s
                } else {
                    format!("# Replication\r\n{s}")
                }
            }
        }
    }

    /// The parameters `CONFIG GET` knows.
    pub(super) fn config_params(&self) -> Vec<(&'static str, String)> {
        let l = &self.shared.opts.limits;
        let busy = self.shared.settings.busy_reply_threshold_ms().to_string();
        vec![
            ("appendonly", "no".into()),
            ("bind", "127.0.0.1".into()),
            ("busy-reply-threshold", busy.clone()),
            ("client-query-buffer-limit", l.max_query_buffer.to_string()),
            ("databases", l.databases.to_string()),
            ("lua-time-limit", busy),
            ("maxclients", l.max_clients.to_string()),
            ("maxmemory", "0".into()),
            ("maxmemory-policy", "noeviction".into()),
            (
                "notify-keyspace-events",
                self.shared.settings.notify_keyspace_events(),
            ),
            ("port", self.shared.port.to_string()),
            ("proto-max-bulk-len", l.max_bulk_len.to_string()),
            ("save", String::new()),
            ("timeout", "0".into()),
        ]
    }
}

/// A `TYPE` of `CLIENT LIST`/`KILL`: `Ok(true)` for `normal` (every connection here),
/// `Ok(false)` for the kinds no connection here is, Redis's error otherwise.
fn client_type(t: &[u8]) -> Result<bool, Reply> {
    let is = |s: &str| t.eq_ignore_ascii_case(s.as_bytes());
    if is("normal") {
        Ok(true)
    } else if is("master") || is("replica") || is("slave") || is("pubsub") {
        Ok(false)
    } else {
        Err(Reply::err(format!(
            "Unknown client type '{}'",
            String::from_utf8_lossy(t)
        )))
    }
}

/// A client id of `CLIENT LIST ID`: a positive integer.
fn commands_id(a: &[u8]) -> Option<u64> {
    sessionmesh_core::cmd::parse_u64(a).filter(|n| *n > 0)
}
