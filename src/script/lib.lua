-- The scripts' environment, set up once per Lua state (one per thread) before any script runs.
-- Runs with the full global table; `S` is the state shared with Rust: `S.redis` (the `redis`
-- table, its Rust functions already in it) and `S.errtext` (an error object's text).
local S = ...
local error, type, tostring, setmetatable = error, type, tostring, setmetatable
local redis = S.redis

-- redis.call and redis.pcall are Rust functions, set for each script (a C function keeps the
-- script's frame on the stack even in `return redis.call(...)`, so errors name its line).
redis.error_reply = function(e)
  if type(e) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {err = e}
end
redis.status_reply = function(s)
  if type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = s}
end
redis.replicate_commands = function() return true end
redis.set_repl = function() end
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3

-- Libraries are read-only to scripts, as in Redis 7: nothing a script does to them leaks into
-- the next script.
local function readonly(t)
  return setmetatable({}, {
    __index = t,
    __newindex = function() error('Attempt to modify a readonly table', 2) end,
    __metatable = false,
  })
end
for _, name in ipairs({'string', 'table', 'math', 'redis'}) do
  _G[name] = readonly(_G[name])
end
-- A caught error is its text, as in Redis 7 (`redis.call`'s error replies included).
local opcall, errtext = pcall, S.errtext
local function caught(ok, ...)
  if ok then
    return ok, ...
  end
  return false, errtext((...))
end
pcall = function(...)
  return caught(opcall(...))
end
-- No files, no modules, no output.
dofile, loadfile, print, require, module, collectgarbage, gcinfo, newproxy = nil, nil, nil, nil, nil, nil, nil, nil

-- The globals themselves: a script can neither create a global (it would leak into the next
-- script) nor read one that does not exist (a typo is an error, not a nil), as in Redis 7.
setmetatable(_G, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = function() error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
})
