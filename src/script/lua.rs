//! The Lua side of scripting: one Lua 5.1 state per thread, the sandbox, `redis.*`, and
//! Redis's conversions between Lua values and replies.
//!
//! One state per thread because an `mlua::Lua` is not `Send` and a script never leaves the
//! thread that runs it: each tokio worker thread builds its own on its first script and keeps
//! the compiled functions of the scripts it ran. The sandbox (`lib.lua`) makes the globals and
//! the libraries read-only, so nothing a script does leaks into the next one; only `KEYS` and
//! `ARGV` are set, by us, before each run.

use super::{Call, Run};
use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use sessionmesh_core::cmd::{Command, CommandId, Flags};
use sessionmesh_core::{ErrorKind, Reply};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bumped by `SCRIPT FLUSH`: every thread drops its compiled functions when it sees it move.
static FLUSHES: AtomicU64 = AtomicU64::new(0);

/// Compiled functions are dropped on every thread (lazily, at its next script).
pub(super) fn forget_compiled() {
    FLUSHES.fetch_add(1, Ordering::Relaxed);
}

/// A thread's Lua state.
struct Vm {
    lua: Lua,
    /// The `redis` table itself (scripts see it through a read-only proxy).
    redis: Table,
    /// Lua's own `xpcall`, taken before the sandbox hides nothing (it stays a global).
    xpcall: Function,
    /// The error handler: where in the script an error was raised.
    handler: Function,
    compiled: HashMap<String, Function>,
    flushes: u64,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

/// Runs `call`, its commands through `run`.
pub(super) fn eval(
    call: &Call<'_>,
    state: &Arc<Run>,
    run: &mut dyn FnMut(&Command) -> Option<Reply>,
) -> Reply {
    with_vm(|vm| {
        // `SCRIPT KILL` from another connection sets the flag; every thousand instructions
        // the script looks at it (an atomic load).
        let s = Arc::clone(state);
        vm.lua.set_hook(
            HookTriggers::new().every_nth_instruction(1000),
            move |_, _| {
                if s.killed() {
                    Err(mlua::Error::external(ScriptError(KILLED.to_string())))
                } else {
                    Ok(VmState::Continue)
                }
            },
        );
        let r = vm.eval(call, run);
        vm.lua.remove_hook();
        Ok(r)
    })
    .unwrap_or_else(|e| e)
}

/// What a script stopped by `SCRIPT KILL` raises.
const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// Compiles `body` on this thread (keeping the function), or answers Redis's compile error.
pub(super) fn compile(body: &Bytes, sha: &str) -> Result<(), Reply> {
    with_vm(|vm| vm.function(body, sha).map(|_| ()))
}

/// `f` with this thread's Lua state, made on first use.
fn with_vm<R>(f: impl FnOnce(&mut Vm) -> Result<R, Reply>) -> Result<R, Reply> {
    VM.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let vm = Vm::new().map_err(|e| Reply::err(format_args!("could not start Lua: {e}")))?;
            *slot = Some(vm);
        }
        match slot.as_mut() {
            Some(vm) => f(vm),
            None => Err(Reply::err("could not start Lua")),
        }
    })
}

impl Vm {
    fn new() -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let globals = lua.globals();
        let redis = lua.create_table()?;
        redis.set(
            "sha1hex",
            lua.create_function(|lua, v: Value| {
                let s = lua.coerce_string(v)?.map(|s| s.as_bytes().to_vec());
                match s {
                    Some(b) => Ok(super::sha1hex(&b)),
                    None => Err(mlua::Error::runtime("wrong number of arguments")),
                }
            })?,
        )?;
        redis.set(
            "log",
            lua.create_function(|lua, args: MultiValue| {
                let mut it = args.into_iter();
                let level = it.next();
                let msg: Vec<String> = it
                    .filter_map(|v| lua.coerce_string(v).ok().flatten())
                    .map(|s| s.to_string_lossy())
                    .collect();
                tracing::info!(target: "sessionmesh::script", ?level, "{}", msg.join(" "));
                Ok(())
            })?,
        )?;
        redis.set(
            "setresp",
            lua.create_function(|_, v: i64| match v {
                // Accepted; replies still reach scripts converted as from RESP2 (docs/DESIGN.md,
                // "Scripts").
                2 | 3 => Ok(()),
                _ => Err(mlua::Error::runtime("RESP version must be 2 or 3.")),
            })?,
        )?;
        redis.set("REDIS_VERSION", crate::resp::commands::REDIS_VERSION)?;
        globals.set("redis", redis.clone())?;
        let shared = lua.create_table()?;
        shared.set("redis", redis.clone())?;
        shared.set(
            "errtext",
            lua.create_function(|lua, e: Value| {
                Ok(match &e {
                    Value::Error(err) => Value::String(lua.create_string(root_text(err))?),
                    Value::Table(t) => match t.raw_get::<Value>("err")? {
                        s @ Value::String(_) => s,
                        _ => e,
                    },
                    _ => e,
                })
            })?,
        )?;
        let xpcall: Function = globals.get("xpcall")?;
        let handler = lua.create_function(|lua, e: Value| {
            let t = lua.create_table()?;
            t.set("e", e)?;
            t.set("line", script_line(lua))?;
            Ok(t)
        })?;
        lua.load(include_str!("lib.lua"))
            .set_name("=sessionmesh")
            .call::<()>(shared)?;
        Ok(Vm {
            lua,
            redis,
            xpcall,
            handler,
            compiled: HashMap::new(),
            flushes: FLUSHES.load(Ordering::Relaxed),
        })
    }

    fn eval(&mut self, call: &Call<'_>, run: &mut dyn FnMut(&Command) -> Option<Reply>) -> Reply {
        let f = match self.function(&call.body, &call.sha) {
            Ok(f) => f,
            Err(e) => return e,
        };
        call.compiled();
        match self.run(&f, call, run) {
            Ok(r) => r,
            Err(e) => Reply::err(format_args!("{e} script: {}", call.sha)),
        }
    }

    /// The compiled function of `body`, compiled now if this thread has not yet.
    fn function(&mut self, body: &Bytes, sha: &str) -> Result<Function, Reply> {
        let flushes = FLUSHES.load(Ordering::Relaxed);
        if flushes != self.flushes {
            self.compiled.clear();
            self.flushes = flushes;
        }
        if let Some(f) = self.compiled.get(sha) {
            return Ok(f.clone());
        }
        match self
            .lua
            .load(&body[..])
            .set_name("@user_script")
            .into_function()
        {
            Ok(f) => {
                self.compiled.insert(sha.to_owned(), f.clone());
                Ok(f)
            }
            Err(e) => {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                Err(Reply::err(format_args!(
                    "Error compiling script (new function): {msg}"
                )))
            }
        }
    }

    fn run(
        &self,
        f: &Function,
        call: &Call<'_>,
        run: &mut dyn FnMut(&Command) -> Option<Reply>,
    ) -> mlua::Result<Reply> {
        let lua = &self.lua;
        let globals = lua.globals();
        globals.raw_set("KEYS", strings(lua, call.keys)?)?;
        globals.raw_set("ARGV", strings(lua, call.argv)?)?;
        let read_only = call.read_only;
        let run = RefCell::new(run);
        let outcome = lua.scope(|scope| {
            let call_fn = scope.create_function_mut(|lua, args: MultiValue| {
                let mut run = run.borrow_mut();
                match command(lua, args, read_only, &mut **run)? {
                    Ok(v) => Ok(v),
                    Err(text) => Err(mlua::Error::external(ScriptError(text))),
                }
            })?;
            let pcall_fn = scope.create_function_mut(|lua, args: MultiValue| {
                let mut run = run.borrow_mut();
                match command(lua, args, read_only, &mut **run)? {
                    Ok(v) => Ok(v),
                    Err(text) => err_table(lua, &text),
                }
            })?;
            self.redis.raw_set("call", call_fn)?;
            self.redis.raw_set("pcall", pcall_fn)?;
            let out: MultiValue = self.xpcall.call((f.clone(), self.handler.clone()))?;
            let mut out = out.into_iter();
            let ok = matches!(out.next(), Some(Value::Boolean(true)));
            let v = out.next().unwrap_or(Value::Nil);
            // Converted inside the scope: the reply may hold nothing of it afterwards.
            Ok(if ok {
                to_reply(&v, 0)
            } else {
                failure(lua, &v, &call.sha)
            })
        });
        self.redis.raw_set("call", Value::Nil)?;
        self.redis.raw_set("pcall", Value::Nil)?;
        outcome
    }
}

/// An error reply `redis.call` raises (its text, code included).
#[derive(Debug)]
struct ScriptError(String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

/// The text of an error raised from Rust: a [`ScriptError`]'s own (an error reply, code
/// included), or `ERR` and the message of any other.
fn root_text(e: &mlua::Error) -> String {
    let mut e = e;
    while let mlua::Error::CallbackError { cause, .. } = e {
        e = cause;
    }
    match e {
        mlua::Error::ExternalError(x) => match x.downcast_ref::<ScriptError>() {
            Some(s) => s.0.clone(),
            None => format!("ERR {x}"),
        },
        mlua::Error::RuntimeError(m) => format!("ERR {m}"),
        other => format!("ERR {other}"),
    }
}

/// `KEYS` or `ARGV` as a Lua array of strings.
fn strings(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, b) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(&b[..])?)?;
    }
    Ok(t)
}

/// The line of the innermost frame of the user's script on the stack (what Redis's error
/// handler reports as `on @user_script:LINE`), 0 if none.
fn script_line(lua: &Lua) -> i32 {
    for level in 0..64 {
        let Some(d) = lua.inspect_stack(level) else {
            break;
        };
        if d.source().source.as_deref() == Some("@user_script") {
            return d.curr_line();
        }
    }
    0
}

/// The error reply of a script that raised `v` (the handler's `{e = error, line = n}`).
fn failure(lua: &Lua, v: &Value, sha: &str) -> Reply {
    let (e, line) = match v {
        Value::Table(t) => (
            t.raw_get::<Value>("e").unwrap_or(Value::Nil),
            t.raw_get::<i64>("line").unwrap_or(0),
        ),
        other => (other.clone(), 0),
    };
    let whence = format!(" script: {sha}, on @user_script:{line}.");
    match &e {
        Value::Error(err) => Reply::error(ErrorKind::Other, format!("{}{whence}", root_text(err))),
        // An error reply raised as such (`redis.call`'s, or `error({err = ...})`): its text.
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => {
                Reply::error(ErrorKind::Other, format!("{}{whence}", s.to_string_lossy()))
            }
            _ => Reply::err(format_args!("unknown error{whence}")),
        },
        other => {
            let msg = lua
                .coerce_string(other.clone())
                .ok()
                .flatten()
                .map(|s| s.to_string_lossy())
                .unwrap_or_else(|| "unknown error".to_string());
            Reply::err(format_args!("{msg}{whence}"))
        }
    }
}

/// An error reply as a script sees it: `{err = text}`.
fn err_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(Value::Table(t))
}

/// `redis.call`/`redis.pcall`: runs one command; `Err` is the text of its error reply (which
/// `redis.call` raises and `redis.pcall` returns as `{err = ...}`).
fn command(
    lua: &Lua,
    args: MultiValue,
    read_only: bool,
    run: &mut dyn FnMut(&Command) -> Option<Reply>,
) -> mlua::Result<Result<Value, String>> {
    let fail = |t: &str| Ok(Err(t.to_string()));
    if args.is_empty() {
        return fail("ERR Please specify at least one argument for this redis lib call");
    }
    let mut line: Vec<Bytes> = Vec::with_capacity(args.len());
    for v in args {
        let s = match v {
            Value::String(_) | Value::Integer(_) | Value::Number(_) => lua.coerce_string(v)?,
            _ => None,
        };
        match s {
            Some(s) => line.push(Bytes::copy_from_slice(&s.as_bytes())),
            None => return fail("ERR Lua redis lib command arguments must be strings or integers"),
        }
    }
    let Some(id) = CommandId::lookup(&line[0]) else {
        return fail("ERR Unknown Redis command called from script");
    };
    let spec = id.spec();
    if spec.flags.contains(Flags::NOSCRIPT) && !matches!(id.name(), "ping" | "echo" | "select") {
        return fail("ERR This Redis command is not allowed from script");
    }
    let Ok(cmd) = Command::new(id, line) else {
        return fail("ERR Wrong number of args calling Redis command from script");
    };
    if read_only && spec.is_write() {
        return fail("ERR Write commands are not allowed from read-only scripts.");
    }
    let reply = if spec.is_data() {
        match run(&cmd) {
            Some(r) => r,
            None => {
                return fail("ERR Script attempted to access a non local key in a cluster node")
            }
        }
    } else {
        match id.name() {
            "ping" => crate::resp::commands::ping(cmd.args()),
            "echo" => Reply::Bulk(cmd.args()[1].clone()),
            // The connection's runner keeps the script's database (see its `in_db`).
            "select" => match run(&cmd) {
                Some(r) => r,
                None => return fail("ERR This Redis command is not allowed from script"),
            },
            _ => return fail("ERR This Redis command is not allowed from script"),
        }
    };
    match &reply {
        Reply::Error(e) => fail(e.text()),
        _ => Ok(Ok(to_lua(lua, &reply)?)),
    }
}

/// A reply as a script sees it (Redis's RESP2-to-Lua conversion).
fn to_lua(lua: &Lua, r: &Reply) -> mlua::Result<Value> {
    Ok(match r {
        Reply::Int(i) => Value::Number(*i as f64),
        Reply::Bulk(b) | Reply::Verbatim(b) => Value::String(lua.create_string(&b[..])?),
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", *s)?;
            Value::Table(t)
        }
        Reply::Status(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", s.as_str())?;
            Value::Table(t)
        }
        Reply::Error(e) => err_table(lua, e.text())?,
        // A script speaks RESP2: a double is its text, pairs are one flat array.
        Reply::Double(x) => Value::String(lua.create_string(x.text())?),
        Reply::Pairs(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (a, b)) in pairs.iter().enumerate() {
                t.raw_set(2 * i + 1, to_lua(lua, a)?)?;
                t.raw_set(2 * i + 2, to_lua(lua, b)?)?;
            }
            Value::Table(t)
        }
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Reply::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                t.raw_set(2 * i + 1, to_lua(lua, k)?)?;
                t.raw_set(2 * i + 2, to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

/// What a script returned, as a reply (Redis's Lua-to-RESP conversion, the same for RESP2
/// and RESP3 clients: `true` is `:1`, `false` the null). Nested tables past a depth Redis would
/// not reach in practice are cut off as nil rather than overflowing the stack.
fn to_reply(v: &Value, depth: usize) -> Reply {
    match v {
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) | Value::Nil => Reply::Nil,
        Value::Integer(i) => Reply::Int(*i),
        // Lua numbers are doubles; Redis truncates them towards zero, and (a C cast on x86)
        // answers the least integer for one out of range or not a number.
        Value::Number(n) => Reply::Int(if n.is_finite() && n.abs() < 9.2e18 {
            *n as i64
        } else {
            i64::MIN
        }),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) if depth < 64 => {
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                return Reply::error(ErrorKind::Other, e.to_string_lossy());
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
                return Reply::Status(s.to_string_lossy());
            }
            let mut out = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(item) => out.push(to_reply(&item, depth + 1)),
                }
            }
            Reply::Array(out)
        }
        _ => Reply::Nil,
    }
}
