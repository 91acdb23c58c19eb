-- The integration failure history, one atomic script per operation (the
-- same rules as the memory and SQLite stores: src/core/failures/memory.rs,
-- src/core/storage/sqlite/failures.rs): at most maxPerService failures per
-- service (the oldest go first) and maxServices services (the least
-- recently failed go first); nothing is dropped for being outside the
-- window, which only says what should_skip counts.
--
-- KEYS[1]: the history's key head, "{prefix}:f:" (every key shares the
--   hash tag, so the script runs on one Redis Cluster node).
-- ARGV: op, maxPerService, maxServices, maxBytes (the caller's; the bounds
--   stored in "bound" win, as in a SQLite file), then the op's own
--   arguments.
--
-- Keys under the head:
--   seq        last sequence number (INCR): recording order, across instances
--   bound      hash maxPerService, maxServices, maxBytes -> the bounds set last
--   bytes      what the failures held hold (FailureRecord::stored_bytes)
--   rb, rs     hash m -> one failure's bytes, and its service
--   rec        hash m -> one failure, as failures.rs encodes it; m = the
--              sequence number as 16 digits, so members sort like numbers
--   all        zset m by seq: every failure held, recording order
--   svc        zset service by the seq of its last failure
--   s:<name>   zset m by seq: one service's failures, recording order
--   t:<name>   zset m by timestamp: the same, for counting a window
--   cdu        zset name by the end of its cooldown (ms): the benched names
--   cd         hash name -> "<since>:<reason>" of its cooldown
-- Cooldowns are bounded by maxServices on their own, and are not counted
-- in bytes (maxBytes bounds the failures only).
-- A service's keys are the head, "s:" or "t:", then its name, whatever it
-- holds: no fixed key starts with "s:" or "t:", so no name can meet one.
--
-- A key of the wrong type (foreign data under the prefix) fails the script
-- with WRONGTYPE before it writes anything: every op that writes checks
-- the types of all the keys it will touch first.

local head = KEYS[1]
local op = ARGV[1]
local stored = redis.call('HMGET', head .. 'bound', 'maxPerService', 'maxServices', 'maxBytes')
local max_per_service = tonumber(stored[1] or ARGV[2])
local max_services = tonumber(stored[2] or ARGV[3])
local max_bytes = tonumber(stored[3] or ARGV[4])

local FIXED = {seq = 'string', bound = 'hash', rec = 'hash', all = 'zset', svc = 'zset',
  bytes = 'string', rb = 'hash', rs = 'hash', cd = 'hash', cdu = 'zset'}

local function log_key(name) return head .. 's:' .. name end
local function times_key(name) return head .. 't:' .. name end

local function guard(key, kind)
  local found = redis.call('TYPE', key).ok
  if found ~= 'none' and found ~= kind then
    error({err = 'WRONGTYPE ' .. key .. ' holds a ' .. found .. ', where this library keeps a ' .. kind})
  end
end

-- Checks the fixed keys and the keys of every service in `names`.
local function guard_all(names)
  for name, kind in pairs(FIXED) do guard(head .. name, kind) end
  for _, name in ipairs(names) do
    guard(log_key(name), 'zset')
    guard(times_key(name), 'zset')
  end
end

-- Calls `call(...)` with the items of `list`, a bounded number at a time
-- (Lua's unpack has a limit).
local function in_chunks(list, call)
  for i = 1, #list, 1000 do
    call(unpack(list, i, math.min(i + 999, #list)))
  end
end

local function held_bytes()
  return tonumber(redis.call('GET', head .. 'bytes') or '0')
end

-- Forgets failures `members` of service `name` everywhere but its log.
local function drop(name, members)
  in_chunks(members, function(...)
    local freed = 0
    for _, b in ipairs(redis.call('HMGET', head .. 'rb', ...)) do freed = freed + (tonumber(b) or 0) end
    if freed > 0 then redis.call('DECRBY', head .. 'bytes', freed) end
    redis.call('ZREM', times_key(name), ...)
    redis.call('ZREM', head .. 'all', ...)
    redis.call('HDEL', head .. 'rec', ...)
    redis.call('HDEL', head .. 'rb', ...)
    redis.call('HDEL', head .. 'rs', ...)
  end)
end

-- The oldest failures (and their services) to drop so that `adding` more
-- bytes fit under maxBytes; the newest failure `keep` always stays.
local function over_bytes(adding, keep)
  local over = held_bytes() + adding - max_bytes
  local members, names = {}, {}
  local rank = 0
  while over > 0 do
    local m = redis.call('ZRANGE', head .. 'all', rank, rank)[1]
    if not m or m == keep then break end
    over = over - (tonumber(redis.call('HGET', head .. 'rb', m)) or 0)
    members[#members + 1] = m
    names[#names + 1] = redis.call('HGET', head .. 'rs', m)
    rank = rank + 1
  end
  return members, names
end

-- Drops the failures `over_bytes` chose; a service left with none is
-- forgotten.
local function drop_oldest(members, names)
  for i, m in ipairs(members) do
    local name = names[i]
    if name then
      drop(name, {m})
      redis.call('ZREM', log_key(name), m)
      if redis.call('ZCARD', log_key(name)) == 0 then
        redis.call('DEL', log_key(name), times_key(name))
        redis.call('ZREM', head .. 'svc', name)
      end
    else
      redis.call('ZREM', head .. 'all', m)
      redis.call('HDEL', head .. 'rec', m)
      redis.call('HDEL', head .. 'rb', m)
    end
  end
end

-- Keeps one service's newest `keep` failures.
local function trim(name, keep)
  local over = redis.call('ZCARD', log_key(name)) - keep
  if over <= 0 then return end
  drop(name, redis.call('ZRANGE', log_key(name), 0, over - 1))
  redis.call('ZREMRANGEBYRANK', log_key(name), 0, over - 1)
end

-- Forgets one service; 1 when it was held.
local function forget(name)
  drop(name, redis.call('ZRANGE', log_key(name), 0, -1))
  redis.call('DEL', log_key(name), times_key(name))
  return redis.call('ZREM', head .. 'svc', name)
end

-- The least recently failed services beyond `keep`.
local function beyond(keep)
  local over = redis.call('ZCARD', head .. 'svc') - keep
  if over <= 0 then return {} end
  return redis.call('ZRANGE', head .. 'svc', 0, over - 1)
end

-- Forgets the cooldowns of `names`.
local function unbench(names)
  in_chunks(names, function(...)
    redis.call('ZREM', head .. 'cdu', ...)
    redis.call('HDEL', head .. 'cd', ...)
  end)
end

-- Drops the cooldowns that ended by `now` (text, ms), then, while `room`
-- more would not fit under maxServices, the ones ending soonest.
local function fit_cooldowns(now, room)
  unbench(redis.call('ZRANGEBYSCORE', head .. 'cdu', '-inf', now))
  local over = redis.call('ZCARD', head .. 'cdu') + room - max_services
  if over > 0 then unbench(redis.call('ZRANGE', head .. 'cdu', 0, over - 1)) end
end

if op == 'record' then
  -- ARGV[5]: service, ARGV[6]: now, ARGV[7]: the encoded failure,
  -- ARGV[8]: its bytes. Replies with the bounds it applied.
  local name, now = ARGV[5], ARGV[6]
  local bytes = tonumber(ARGV[8])
  local known = redis.call('ZSCORE', head .. 'svc', name)
  -- A new service makes room for itself among the services.
  local gone = {}
  if not known then gone = beyond(max_services - 1) end
  local oldest, owners = over_bytes(bytes, nil)
  local touched = {name}
  for _, other in ipairs(gone) do touched[#touched + 1] = other end
  for _, other in ipairs(owners) do touched[#touched + 1] = other end
  guard_all(touched)
  drop_oldest(oldest, owners)
  local seq = redis.call('INCR', head .. 'seq')
  local m = string.format('%016d', seq)
  redis.call('HSET', head .. 'rec', m, ARGV[7])
  redis.call('HSET', head .. 'rb', m, bytes)
  redis.call('HSET', head .. 'rs', m, name)
  redis.call('INCRBY', head .. 'bytes', bytes)
  redis.call('ZADD', head .. 'all', seq, m)
  redis.call('ZADD', log_key(name), seq, m)
  redis.call('ZADD', times_key(name), now, m)
  redis.call('ZADD', head .. 'svc', seq, name)
  if known then
    trim(name, max_per_service)
  else
    for _, other in ipairs(gone) do forget(other) end
  end
  return {max_per_service, max_services, max_bytes}
end

if op == 'skip' then
  -- ARGV[5]: service, ARGV[6]: the window's start. Replies with how many
  -- of the service's failures are at or after it.
  return redis.call('ZCOUNT', times_key(ARGV[5]), ARGV[6], '+inf')
end

if op == 'list' then
  -- ARGV[5]: 'all', or 'one' and ARGV[6] the service; ARGV[7], ARGV[8]:
  -- the first and last rank (-1: to the end). Replies with m, encoded
  -- failure, m, encoded failure, ... oldest first.
  local set = head .. 'all'
  if ARGV[5] == 'one' then set = log_key(ARGV[6]) end
  local members = redis.call('ZRANGE', set, ARGV[7], ARGV[8])
  local out = {}
  in_chunks(members, function(...)
    local chunk = {...}
    local values = redis.call('HMGET', head .. 'rec', ...)
    for i, m in ipairs(chunk) do
      out[#out + 1] = m
      out[#out + 1] = values[i]
    end
  end)
  return out
end

if op == 'clear' then
  -- ARGV[5]: 'all', or 'one' and ARGV[6] the service. Replies 1 when
  -- anything was held.
  -- The cooldowns go too.
  if ARGV[5] == 'one' then
    guard_all({ARGV[6]})
    local benched = redis.call('ZREM', head .. 'cdu', ARGV[6])
    redis.call('HDEL', head .. 'cd', ARGV[6])
    if forget(ARGV[6]) + benched > 0 then return 1 end
    return 0
  end
  local names = redis.call('ZRANGE', head .. 'svc', 0, -1)
  guard_all(names)
  local benched = redis.call('ZCARD', head .. 'cdu')
  for _, name in ipairs(names) do
    redis.call('DEL', log_key(name), times_key(name))
  end
  redis.call('DEL', head .. 'all', head .. 'rec', head .. 'svc', head .. 'bytes', head .. 'rb', head .. 'rs',
    head .. 'cd', head .. 'cdu')
  if #names > 0 or benched > 0 then return 1 end
  return 0
end

if op == 'stats' then
  -- ARGV[5], ARGV[6]: the first rank and how many services (a page, so
  -- that no run holds the server long). Replies per service held: its
  -- name, its oldest failure's m, how many it has, its newest failure's
  -- timestamp.
  local out = {}
  local first_rank = tonumber(ARGV[5])
  local services = redis.call('ZRANGE', head .. 'svc', first_rank, first_rank + tonumber(ARGV[6]) - 1)
  for _, name in ipairs(services) do
    local first = redis.call('ZRANGE', log_key(name), 0, 0)[1]
    local last = redis.call('ZRANGE', log_key(name), -1, -1)[1]
    if first then
      out[#out + 1] = {name, first, redis.call('ZCARD', log_key(name)),
        redis.call('ZSCORE', times_key(name), last)}
    end
  end
  return out
end

if op == 'set_bound' then
  -- ARGV[5], ARGV[6], ARGV[7]: the new maxPerService, maxServices and
  -- maxBytes, for every instance; they apply at once to what is held.
  local names = redis.call('ZRANGE', head .. 'svc', 0, -1)
  guard_all(names)
  redis.call('HSET', head .. 'bound', 'maxPerService', ARGV[5], 'maxServices', ARGV[6], 'maxBytes', ARGV[7])
  for _, name in ipairs(beyond(tonumber(ARGV[6]))) do forget(name) end
  for _, name in ipairs(redis.call('ZRANGE', head .. 'svc', 0, -1)) do
    trim(name, tonumber(ARGV[5]))
  end
  max_bytes = tonumber(ARGV[7])
  local newest = redis.call('ZRANGE', head .. 'all', -1, -1)[1]
  drop_oldest(over_bytes(0, newest))
  return 1
end

if op == 'bench' then
  -- ARGV[5]: the name, ARGV[6]: the cooldown's end, ARGV[7]: now (both
  -- ms, as text, never through a Lua number), ARGV[8]: the reason. A
  -- running cooldown is only ever lengthened; ended ones are dropped.
  guard(head .. 'cd', 'hash')
  guard(head .. 'cdu', 'zset')
  local name = ARGV[5]
  local held = tonumber(redis.call('ZSCORE', head .. 'cdu', name))
  if held and held > tonumber(ARGV[7]) then
    if tonumber(ARGV[6]) > held then
      local since = string.match(redis.call('HGET', head .. 'cd', name) or '', '^(%d+):') or ARGV[7]
      redis.call('ZADD', head .. 'cdu', ARGV[6], name)
      redis.call('HSET', head .. 'cd', name, since .. ':' .. ARGV[8])
    end
    fit_cooldowns(ARGV[7], 0)
    return 1
  end
  unbench({name})
  fit_cooldowns(ARGV[7], 1)
  if max_services > 0 then
    redis.call('ZADD', head .. 'cdu', ARGV[6], name)
    redis.call('HSET', head .. 'cd', name, ARGV[7] .. ':' .. ARGV[8])
  end
  return 1
end

if op == 'cooling' then
  -- ARGV[5..]: names. Replies with the end of each one's cooldown (nil
  -- for none; the caller drops the ended ones).
  local out = {}
  for i = 5, #ARGV do out[#out + 1] = redis.call('ZSCORE', head .. 'cdu', ARGV[i]) end
  return out
end

if op == 'cooldowns' then
  -- ARGV[5]: now. Replies with name, end, "<since>:<reason>", ... for the
  -- cooldowns running, ending soonest first (ties by name).
  local ends = redis.call('ZRANGEBYSCORE', head .. 'cdu', '(' .. ARGV[5], '+inf', 'WITHSCORES')
  local out = {}
  for i = 1, #ends, 2 do
    out[#out + 1] = ends[i]
    out[#out + 1] = ends[i + 1]
    out[#out + 1] = redis.call('HGET', head .. 'cd', ends[i])
  end
  return out
end

if op == 'bytes' then
  return held_bytes()
end

if op == 'bound' then
  return stored
end

return redis.error_reply('unknown failures op ' .. tostring(op))
