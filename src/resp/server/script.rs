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
        let r = backend.hold(keys, &mut self.marks, |run| {
            call.run(&state, &mut |c: &Command| {
                if c.spec().is_write() {
                    state.wrote();
                }
                run(c)
            })
        });
        scripts.end(self.client.id);
        r
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
        let threshold = self.shared.opts.limits.busy_reply_threshold_ms;
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

    /// `EXEC` of a queue holding a script: every shard is held for the whole transaction (a
    /// script's keys are known only once it is parsed, and holding all is what keeps the
    /// transaction atomic whatever they are).
    pub(super) fn exec_with_scripts(&mut self, queue: Vec<Command>) -> Reply {
        let backend = Arc::clone(&self.backend);
        let mut marks = std::mem::take(&mut self.marks);
        let shared = Arc::clone(&self.shared);
        let state = shared.scripts.start(self.client.id);
        let out = backend.hold(None, &mut marks, |run| {
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
                        Ok(call) => call.run(&state, &mut run),
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
            out
        });
        shared.scripts.end(self.client.id);
        self.marks = marks;
        Reply::Array(out)
    }
}
