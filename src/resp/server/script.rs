//! `EVAL` and friends on a connection: a script holds the shards of its keys while it runs
//! (see [`crate::script`]); inside `MULTI`, the whole transaction holds every shard.

use super::*;
use crate::script::Call;

/// Whether `id` is one of the four `EVAL` commands.
pub(super) fn is_eval(id: CommandId) -> bool {
    matches!(id.name(), "eval" | "evalsha" | "eval_ro" | "evalsha_ro")
}

impl<B: Backend> Conn<B> {
    /// Runs one `EVAL`-family command.
    pub(super) fn eval(&mut self, cmd: &Command) -> Reply {
        let call = match Call::parse(cmd, &self.shared.scripts) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let keys = (!call.keys.is_empty()).then_some(call.keys);
        let backend = Arc::clone(&self.backend);
        let scripts = &self.shared.scripts;
        let state = scripts.start(self.client.id);
        let databases = self.shared.opts.limits.databases;
        let r = backend.hold(keys, &mut self.marks, &[], |run| {
            let mut run = in_db(cmd.db(), databases, run);
            call.run(&state, &mut |c: &Command| {
                if c.spec().is_write() {
                    state.wrote();
                }
                run(c)
            })
        });
        scripts.end(self.client.id);
        r.unwrap_or(Reply::NilArray)
    }

    /// Whether Redis serves this command while a script runs (`SCRIPT KILL`, and the
    /// commands flagged `allow_busy`).
    pub(super) fn allowed_while_busy(&self, id: Option<CommandId>, args: &[Bytes]) -> bool {
        id.is_some_and(|id| {
            id.spec().flags.contains(Flags::ALLOW_BUSY)
                || (id.name() == "script"
                    && args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"kill")))
        })
    }

    /// Waits until no other connection's script runs (`true`), or one has run past
    /// `busy-reply-threshold` (`false`: the command is answered `BUSY`). Polls every
    /// millisecond: scripts are rare and short, and the wait holds no thread.
    pub(super) async fn wait_for_scripts(&self) -> bool {
        let threshold = self.shared.settings.busy_reply_threshold_ms();
        loop {
            if !self.shared.scripts.others_running(self.client.id) {
                return true;
            }
            if self.shared.scripts.busy(self.client.id, threshold) {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Before batched commands run: while another connection's script runs they wait for it
    /// here, without holding the thread (run now, they would block it on a shard the script
    /// holds, and with it every connection of the thread, `SCRIPT KILL` included); past
    /// `busy-reply-threshold` they are answered `BUSY`, as Redis answers what it reads then.
    pub(super) async fn settle_scripts(&mut self) {
        if self.batch.is_empty() || !self.shared.scripts.others_running(self.client.id) {
            return;
        }
        if self.wait_for_scripts().await {
            return;
        }
        self.batch_ids.clear();
        let n = self.batch.len();
        self.batch.clear();
        let r = Reply::error(ErrorKind::Other, crate::script::BUSY);
        for _ in 0..n {
            self.note_error(&r);
            encode(&r, self.proto, &mut self.wbuf);
        }
    }

    /// `WATCH key...`: remembers each key's state and whether it exists now.
    pub(super) fn watch(&mut self, keys: &[Bytes]) {
        for key in keys {
            let key = &sessionmesh_core::db::encode(self.client.db, key);
            let state = self.backend.key_state(key);
            let existed = exists(
                &mut |c| Some(self.backend.execute(c, &mut Marks::default())),
                key,
            );
            self.watched.push(Watched {
                key: key.clone(),
                state,
                existed: existed.unwrap_or(false),
            });
        }
    }

    /// `EXEC` of a queue holding a script, or after `WATCH`: every shard is held for the whole
    /// transaction (a script's keys are known only once it is parsed, and holding all is what
    /// keeps the transaction atomic whatever they are). A watched key that changed since —
    /// by a command here or a peer's delta merged — or that expired aborts it: the null
    /// array, as from Redis.
    pub(super) fn exec_held(&mut self, queue: Vec<Command>, watched: Vec<Watched>) -> Reply {
        let backend = Arc::clone(&self.backend);
        let mut marks = std::mem::take(&mut self.marks);
        let shared = Arc::clone(&self.shared);
        let scripted = queue.iter().any(|c| is_eval(c.id()));
        let state = if scripted {
            shared.scripts.start(self.client.id)
        } else {
            crate::script::Scripts::unregistered()
        };
        let unchanged: Vec<(Bytes, Option<sessionmesh_core::KeyState>)> = watched
            .iter()
            .map(|w| (w.key.clone(), w.state.clone()))
            .collect();
        let out = backend.hold(None, &mut marks, &unchanged, |run| {
            if watched
                .iter()
                .any(|w| exists(&mut *run, &w.key) != Some(w.existed))
            {
                return None;
            }
            let mut out = Vec::with_capacity(queue.len());
            let mut run = |c: &Command| {
                if c.spec().is_write() {
                    state.wrote();
                }
                run(c)
            };
            for cmd in &queue {
                let r = if cmd.spec().is_data() {
                    run(cmd).unwrap_or(Reply::Nil)
                } else if is_eval(cmd.id()) {
                    match Call::parse(cmd, &shared.scripts) {
                        Ok(call) => {
                            let databases = shared.opts.limits.databases;
                            call.run(&state, &mut in_db(cmd.db(), databases, &mut run))
                        }
                        Err(e) => e,
                    }
                } else {
                    match cmd.id().name() {
                        "wait" => match wait_args(cmd.args()) {
                            Ok(_) => Reply::Int(self.held_now() as i64),
                            Err(e) => e,
                        },
                        _ => self.connection_command(cmd),
                    }
                };
                out.push(r);
            }
            Some(out)
        });
        if scripted {
            shared.scripts.end(self.client.id);
        }
        self.marks = marks;
        match out.flatten() {
            Some(out) => Reply::Array(out),
            None => Reply::NilArray,
        }
    }
}

/// A script's `redis.call`s as run in database `db`: their keys become stored names, and a
/// `SELECT` inside the script moves the rest of the script (only) to another database, as in
/// Redis 7. The script's `KEYS` stay the names the client sent.
fn in_db<'a>(
    mut db: u8,
    databases: u16,
    run: &'a mut dyn FnMut(&Command) -> Option<Reply>,
) -> impl FnMut(&Command) -> Option<Reply> + 'a {
    move |c: &Command| {
        if c.id().name() == "select" {
            return Some(match commands::select(c.args(), databases) {
                Ok(d) => {
                    db = d;
                    Reply::OK
                }
                Err(e) => e,
            });
        }
        run(&c.clone().in_db(db))
    }
}

/// Whether `key` exists for clients, asked through `run` (`None`: it could not be asked).
fn exists(run: &mut dyn FnMut(&Command) -> Option<Reply>, key: &Bytes) -> Option<bool> {
    let id = CommandId::lookup(b"exists")?;
    let cmd = Command::new(id, vec![Bytes::from_static(b"exists"), key.clone()]).ok()?;
    match run(&cmd)? {
        Reply::Int(n) => Some(n > 0),
        _ => None,
    }
}
