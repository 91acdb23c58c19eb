-- The integration failure history's shared part (prepended to each
-- failure command after guards.lua): the same rules as the memory and
-- SQLite stores (src/core/failures/memory.rs,
-- src/core/storage/sqlite/failures.rs): at most maxPerService failures per
-- service (the oldest go first) and maxServices services (the least
-- recently failed go first); nothing is dropped for being outside the
-- window, which only says what should_skip counts.
--
-- KEYS[1]: the key head, "{prefix}:f:" (every key shares the hash tag);
-- KEYS[2..]: the fixed keys, head .. NAMES[i - 1]:
--   seq        last sequence number (INCR): recording order, across instances
--   bound      hash maxPerService, maxServices, maxBytes: the bounds set last
--   rec        hash m -> one failure, as failures.rs encodes it; m = the
--              sequence number as 16 digits, so members sort like numbers
--   all        zset m by seq: every failure held, recording order
--   svc        zset service by the seq of its last failure
--   bytes      what the failures held hold (FailureRecord::stored_bytes)
--   rb, rs     hash m -> one failure's bytes, and its service
--   cd         hash name -> "<since>:<reason>" of its cooldown
--   cdu        zset name by the end of its cooldown (ms): the benched names
--   rid        zset record id by seq: the last RID_MAX failures recorded,
--              so a record sent again (its reply was lost) counts once
--   stat       hash writes (the probe)
-- and, made from the head, s:<name> and t:<name>: one service's failures
-- (zsets of m, by seq and by timestamp). No fixed key starts with "s:" or
-- "t:", so no name can meet one. Cooldowns are bounded by maxServices on
-- their own, and are not counted in bytes (maxBytes bounds the failures
-- only).
--
-- ARGV[1..3]: maxPerService, maxServices, maxBytes (the caller's; the
-- bounds stored in "bound" win); the command's own arguments follow from
-- ARGV[4].

local head = KEYS[1]
local NAMES = {'seq', 'bound', 'rec', 'all', 'svc', 'bytes', 'rb', 'rs', 'cd', 'cdu', 'rid', 'stat'}
local KINDS = {'string', 'hash', 'hash', 'zset', 'zset', 'string', 'hash', 'hash', 'hash', 'zset', 'zset',
  'hash'}
local SEQ, BOUND, REC, ALL, SVC, BYTES, RB, RS, CD, CDU, RID, STAT = KEYS[2], KEYS[3], KEYS[4],
  KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]

guard_keys(KINDS)

local stored = redis.call('HMGET', BOUND, 'maxPerService', 'maxServices', 'maxBytes')
local max_per_service = tonumber(stored[1] or ARGV[1])
local max_services = tonumber(stored[2] or ARGV[2])
local max_bytes = tonumber(stored[3] or ARGV[3])
-- Services (or failures, for the byte bound) worked per run; failures
-- removed per run by a clear.
local BATCH = 50
local CLEAR_FAILURES = 500
local RID_MAX = 10000

local function log_key(name) return head .. 's:' .. name end
local function times_key(name) return head .. 't:' .. name end

-- Checks the keys of every service in `names`.
local function guard_services(names)
  for _, name in ipairs(names) do
    guard(log_key(name), 'zset')
    guard(times_key(name), 'zset')
  end
end

local function held_bytes()
  return tonumber(redis.call('GET', BYTES) or '0')
end

-- Forgets failures `members` of service `name` everywhere but its log.
local function drop(name, members)
  in_chunks(members, function(...)
    local freed = 0
    for _, b in ipairs(redis.call('HMGET', RB, ...)) do freed = freed + (tonumber(b) or 0) end
    if freed > 0 then redis.call('DECRBY', BYTES, freed) end
    redis.call('ZREM', times_key(name), ...)
    redis.call('ZREM', ALL, ...)
    redis.call('HDEL', REC, ...)
    redis.call('HDEL', RB, ...)
    redis.call('HDEL', RS, ...)
  end)
end

-- The oldest failures (and their services) to drop so that `adding` more
-- bytes fit under maxBytes, at most `limit`; the newest failure `keep`
-- always stays.
local function over_bytes(adding, keep, limit)
  local over = held_bytes() + adding - max_bytes
  local members, names = {}, {}
  local rank = 0
  while over > 0 and rank < limit do
    local m = redis.call('ZRANGE', ALL, rank, rank)[1]
    if not m or m == keep then break end
    over = over - (tonumber(redis.call('HGET', RB, m)) or 0)
    members[#members + 1] = m
    names[#names + 1] = redis.call('HGET', RS, m)
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
        redis.call('ZREM', SVC, name)
      end
    else
      redis.call('ZREM', ALL, m)
      redis.call('HDEL', REC, m)
      redis.call('HDEL', RB, m)
    end
  end
end

-- Drops one service's oldest failures beyond its newest `keep`, at most
-- `limit` of them; returns how many went and whether it is done.
local function trim(name, keep, limit)
  local over = redis.call('ZCARD', log_key(name)) - keep
  if over <= 0 then return 0, true end
  local now_over = math.min(over, limit)
  drop(name, redis.call('ZRANGE', log_key(name), 0, now_over - 1))
  redis.call('ZREMRANGEBYRANK', log_key(name), 0, now_over - 1)
  return now_over, now_over == over
end

-- Forgets one service, at most `limit` of its failures in this run;
-- returns whether it was held, how many failures went, and whether it is
-- gone (else the rest goes in a later run).
local function forget(name, limit)
  local held = redis.call('ZCARD', log_key(name))
  if held > limit then
    local gone = trim(name, held - limit, limit)
    return 1, gone, false
  end
  drop(name, redis.call('ZRANGE', log_key(name), 0, -1))
  redis.call('DEL', log_key(name), times_key(name))
  return redis.call('ZREM', SVC, name), held, true
end

-- Forgets the services `names` in order, within `budget` failures; returns
-- the budget left.
local function forget_all(names, budget)
  for _, name in ipairs(names) do
    if budget <= 0 then break end
    local _, went = forget(name, budget)
    budget = budget - went
  end
  return budget
end

-- The least recently failed services beyond `keep`, at most `limit`.
local function beyond(keep, limit)
  local over = math.min(redis.call('ZCARD', SVC) - keep, limit)
  if over <= 0 then return {} end
  return redis.call('ZRANGE', SVC, 0, over - 1)
end

-- Forgets the cooldowns of `names`.
local function unbench(names)
  in_chunks(names, function(...)
    redis.call('ZREM', CDU, ...)
    redis.call('HDEL', CD, ...)
  end)
end

-- Drops the cooldowns that ended by `now` (text, ms), then, while `room`
-- more would not fit under maxServices, the ones ending soonest.
local function fit_cooldowns(now, room)
  unbench(redis.call('ZRANGEBYSCORE', CDU, '-inf', now, 'LIMIT', 0, BATCH))
  local over = redis.call('ZCARD', CDU) + room - max_services
  if over > 0 then unbench(redis.call('ZRANGE', CDU, 0, over - 1)) end
end

-- One bounded step of fitting what is held to the bounds: first the
-- services beyond maxServices go (least recently failed first), then each
-- service is trimmed to maxPerService (from rank `from` on), then the
-- oldest failures go while the bytes are over maxBytes (the newest always
-- stays). `before_write` runs after the step's checks, before its first
-- write. Returns {1 when more is left to do, the rank to go on from}.
local function fit_step(from, before_write)
  local budget = CLEAR_FAILURES
  local gone = beyond(max_services, BATCH)
  if #gone > 0 then
    guard_services(gone)
    writable(STAT)
    before_write()
    forget_all(gone, budget)
    return {1, 0}
  end
  local names = redis.call('ZRANGE', SVC, from, from + BATCH - 1)
  if #names > 0 then
    guard_services(names)
    writable(STAT)
    before_write()
    local next = from
    for _, name in ipairs(names) do
      local went, done = trim(name, max_per_service, budget)
      budget = budget - went
      if not done then break end
      next = next + 1
      if budget <= 0 then break end
    end
    return {1, next}
  end
  local newest = redis.call('ZRANGE', ALL, -1, -1)[1]
  local members, owners = over_bytes(0, newest, BATCH)
  local named = {}
  for i = 1, #members do
    if owners[i] then named[#named + 1] = owners[i] end
  end
  guard_services(named)
  writable(STAT)
  before_write()
  drop_oldest(members, owners)
  if #members > 0 then return {1, from} end
  return {0, 0}
end
