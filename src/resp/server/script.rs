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
        backend.hold(keys, &mut self.marks, |run| call.run(run))
    }

    /// `EXEC` of a queue holding a script: every shard is held for the whole transaction (a
    /// script's keys are known only once it is parsed, and holding all is what keeps the
    /// transaction atomic whatever they are).
    pub(super) fn exec_with_scripts(&mut self, queue: Vec<Command>) -> Reply {
        let backend = Arc::clone(&self.backend);
        let mut marks = std::mem::take(&mut self.marks);
        let out = backend.hold(None, &mut marks, |run| {
            let mut out = Vec::with_capacity(queue.len());
            for cmd in &queue {
                let r = if cmd.spec().is_data() {
                    run(cmd).unwrap_or(Reply::Nil)
                } else if is_eval(cmd.id()) {
                    match Call::parse(cmd, &self.shared.scripts) {
                        Ok(call) => call.run(&mut *run),
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
        self.marks = marks;
        Reply::Array(out)
    }
}
