-- Shared by every command (prepended to each script by commands.rs).
--
-- A command checks the type of every key it will write before the first
-- write (`guard`), then makes sure the server takes writes at all
-- (`writable`): a key of another kind (foreign data under the prefix)
-- fails the command with WRONGTYPE naming the full key, a server out of
-- memory with `noeviction` fails it with OOM, and in both cases nothing
-- has been written. (Redis decides OOM once, when a script starts, and
-- refuses only a script's first write that could grow memory; the probe
-- makes that first write one that changes nothing.)

local function key_type(key)
  return redis.call('TYPE', key)['ok']
end

-- Refuses `key` when it holds another kind of value than `kind`.
local function guard(key, kind)
  local held = key_type(key)
  if held ~= 'none' and held ~= kind then
    error({err = 'WRONGTYPE ' .. key .. ' holds a ' .. held .. ', where this library keeps a ' .. kind})
  end
end

-- Checks that each KEYS[i + 1] (the store's fixed keys, in the order of
-- `names`: commands.rs declares the same order, and a cargo test holds the
-- two together) holds a `kinds[i]` or nothing.
local function guard_keys(kinds)
  for i, kind in ipairs(kinds) do guard(KEYS[i + 1], kind) end
end

-- A write that changes nothing, before the first real one: on a server
-- that refuses writes (OOM) the command fails here, whole.
local function writable(stat_key)
  redis.call('HINCRBY', stat_key, 'writes', 0)
end

-- Whether the server takes writes now: a read advances time (lease
-- expiry, retry times) only then, and is still answered when it does not.
local function can_write(stat_key)
  local reply = redis.pcall('HINCRBY', stat_key, 'writes', 0)
  return type(reply) ~= 'table' or reply['err'] == nil
end

-- Calls `call(...)` with the items of `list`, a bounded number at a time
-- (Lua's unpack has a limit).
local function in_chunks(list, call)
  for i = 1, #list, 1000 do
    call(unpack(list, i, math.min(i + 999, #list)))
  end
end
