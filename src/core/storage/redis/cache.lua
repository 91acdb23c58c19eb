-- The response cache, one atomic script per call (the same rules as the
-- memory and SQLite caches: src/core/cache/memory.rs).
--
-- KEYS[1]: the cache's key head, "{prefix}:c:" (every key shares the hash
--   tag, so the script runs on one Redis Cluster node).
-- ARGV: op, now ('' for the ops that take no time: delete, clear),
--   purgeBefore (now - staleIfErrorMs: entries that expired before it are
--   past their grace), maxEntries, maxBytes (the caller's; the bounds
--   stored in "bound" win, as in a SQLite file), then the op's own
--   arguments. Instants and sizes arrive as decimal text and are written
--   back as that text, never through Lua's number formatting.
--
-- Keys under the head:
--   e:<d>   hash, one entry: p (prompt), m (model id), r (response JSON),
--           t (timestamp), x (expires at), b (bytes: prompt + response);
--           d = the key's 128-bit digest in hex. The key itself is stored
--           and compared, so a digest collision is a miss, never another
--           key's answer
--   used    zset d by use tick: every entry held, least recently used first
--   live    zset d by expires at: entries within their TTL
--   born    zset d by timestamp: the same entries (oldestEntry, newestEntry)
--   stale   zset d by expires at: expired entries kept for stale-if-error
--   tot     hash: tick (the last use tick), held and live (bytes), hits,
--           misses, evictions
--   bound   hash: maxEntries, maxBytes, set by the last configure
--
-- Every script first checks that none of these keys holds another kind of
-- value; one that does (foreign data under the prefix) is refused with a
-- WRONGTYPE error before anything is written.

local head = KEYS[1]
local op = ARGV[1]
local now = ARGV[2]
local purge_before = tonumber(ARGV[3])

local USED, LIVE, BORN, STALE = head .. 'used', head .. 'live', head .. 'born', head .. 'stale'
local TOT, BOUND = head .. 'tot', head .. 'bound'
local BATCH = 1000

local function entry(d) return head .. 'e:' .. d end

-- The ops on one entry name its digest first (ARGV[6]).
local ON_ENTRY = {set = true, get = true, delete = true, damaged = true}
local digest = ON_ENTRY[op] and ARGV[6]

local KINDS = {
  {USED, 'zset'}, {LIVE, 'zset'}, {BORN, 'zset'}, {STALE, 'zset'}, {TOT, 'hash'}, {BOUND, 'hash'},
}
if digest then KINDS[#KINDS + 1] = {entry(digest), 'hash'} end

local function kind(key)
  return redis.call('TYPE', key)['ok']
end

for _, pair in ipairs(KINDS) do
  local key, wanted = pair[1], pair[2]
  local held = kind(key)
  if held ~= 'none' and held ~= wanted then
    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. held .. ', not the ' .. wanted ..
      ' this cache keeps there')
  end
end

-- A bound as text and as a number: the stored one, when it is a number.
local function bound(stored, given)
  if tonumber(stored) then return stored, tonumber(stored) end
  return given, tonumber(given)
end
local stored = redis.call('HMGET', BOUND, 'maxEntries', 'maxBytes')
local max_entries_text, max_entries = bound(stored[1], ARGV[4])
local max_bytes_text, max_bytes = bound(stored[2], ARGV[5])

local function count(field, by)
  if by ~= 0 then redis.call('HINCRBY', TOT, field, by) end
end

local function total(field)
  return tonumber(redis.call('HGET', TOT, field)) or 0
end

local function bytes_of(d)
  if kind(entry(d)) ~= 'hash' then return 0 end
  return tonumber(redis.call('HGET', entry(d), 'b')) or 0
end

-- Marks d the most recently used entry.
local function touch(d)
  redis.call('ZADD', USED, redis.call('HINCRBY', TOT, 'tick', 1), d)
end

-- Forgets d everywhere (a key of another kind in its place is left alone).
local function remove(d)
  local bytes = bytes_of(d)
  if kind(entry(d)) == 'hash' then redis.call('DEL', entry(d)) end
  if redis.call('ZREM', LIVE, d) == 1 then count('live', -bytes) end
  redis.call('ZREM', BORN, d)
  redis.call('ZREM', STALE, d)
  redis.call('ZREM', USED, d)
  count('held', -bytes)
end

-- What time alone changes: entries past their TTL become stale, or go
-- when they are past their grace too. Each entry passes here once or twice
-- in its life; a call that finds many due at once does them all.
local function advance()
  if now == '' then return end
  repeat
    local gone = redis.call('ZRANGEBYSCORE', STALE, '-inf', '(' .. ARGV[3], 'LIMIT', 0, BATCH)
    for _, d in ipairs(gone) do remove(d) end
  until #gone < BATCH
  repeat
    local expired = redis.call('ZRANGEBYSCORE', LIVE, '-inf', '(' .. now, 'WITHSCORES', 'LIMIT', 0, BATCH)
    for i = 1, #expired, 2 do
      local d, expires_at = expired[i], expired[i + 1]
      if tonumber(expires_at) < purge_before then
        remove(d)
      else
        redis.call('ZREM', LIVE, d)
        redis.call('ZREM', BORN, d)
        redis.call('ZADD', STALE, expires_at, d)
        count('live', -bytes_of(d))
      end
    end
  until #expired < 2 * BATCH
end

-- Evicts until the bounds hold: stale entries first (soonest expired
-- first), then the least recently used. Returns how many went.
local function enforce()
  local evicted = 0
  while redis.call('ZCARD', USED) > max_entries or total('held') > max_bytes do
    local victim = redis.call('ZRANGE', STALE, 0, 0)[1] or redis.call('ZRANGE', USED, 0, 0)[1]
    if not victim then break end
    remove(victim)
    evicted = evicted + 1
  end
  count('evictions', evicted)
  return evicted
end

-- Whether d's entry holds exactly this key (ARGV[7], ARGV[8]).
local function is_key(d)
  local held = redis.call('HMGET', entry(d), 'p', 'm')
  return held[1] == ARGV[7] and held[2] == ARGV[8]
end

if op == 'set' then
  -- ARGV[6..10]: digest, prompt, model id, response, expires at
  local bytes = #ARGV[7] + #ARGV[9]
  if bytes > max_bytes then return {'TOO_LARGE', max_bytes_text} end
  advance()
  -- The key's old entry, or (a digest collision) another key's.
  remove(digest)
  redis.call('HSET', entry(digest), 'p', ARGV[7], 'm', ARGV[8], 'r', ARGV[9], 't', now,
    'x', ARGV[10], 'b', bytes)
  touch(digest)
  redis.call('ZADD', LIVE, ARGV[10], digest)
  redis.call('ZADD', BORN, now, digest)
  count('held', bytes)
  count('live', bytes)
  enforce()
  return {'OK', max_entries_text, max_bytes_text}
end

if op == 'get' then
  -- ARGV[6..9]: digest, prompt, model id, '1' when a stale entry will do.
  -- Replies the response, timestamp, expiry and '1' when stale, or nil.
  advance()
  local found = redis.call('HMGET', entry(digest), 'p', 'm', 'r', 't', 'x')
  local stale = '0'
  local servable = found[1] == ARGV[7] and found[2] == ARGV[8]
  if servable and not redis.call('ZSCORE', LIVE, digest) then
    stale = '1'
    servable = ARGV[9] == '1' and redis.call('ZSCORE', STALE, digest)
  end
  if not servable then
    count('misses', 1)
    return false
  end
  count('hits', 1)
  touch(digest)
  return {found[3], found[4], found[5], stale}
end

if op == 'delete' or op == 'damaged' then
  -- ARGV[6..8]: digest, prompt, model id. 'damaged': the entry a hit just
  -- served cannot be used; it goes, and the hit counts as a miss.
  if not is_key(digest) then return 0 end
  remove(digest)
  if op == 'damaged' then
    count('hits', -1)
    count('misses', 1)
  end
  return 1
end

if op == 'clear' then
  -- Every entry held is in "used". One run removes at most CLEAR_BATCH of
  -- them, so that no run holds the server for long; it replies 0 while
  -- entries remain (the caller runs it again), then resets the counters
  -- and replies 1. The bounds stay.
  local CLEAR_BATCH = 5 * BATCH
  local removed = 0
  repeat
    local batch = redis.call('ZRANGE', USED, 0, BATCH - 1)
    for _, d in ipairs(batch) do
      if kind(entry(d)) == 'hash' then redis.call('UNLINK', entry(d)) end
    end
    if #batch > 0 then redis.call('ZREM', USED, unpack(batch)) end
    removed = removed + #batch
  until #batch < BATCH or removed >= CLEAR_BATCH
  if redis.call('ZCARD', USED) > 0 then return 0 end
  redis.call('DEL', LIVE, BORN, STALE, TOT)
  return 1
end

if op == 'stats' then
  -- Replies size, oldest, newest (nil when empty), hits, misses,
  -- evictions, live bytes, maxEntries, maxBytes.
  advance()
  local oldest = redis.call('ZRANGE', BORN, 0, 0, 'WITHSCORES')[2] or false
  local newest = redis.call('ZREVRANGE', BORN, 0, 0, 'WITHSCORES')[2] or false
  local counts = redis.call('HMGET', TOT, 'hits', 'misses', 'evictions', 'live')
  return {redis.call('ZCARD', LIVE), oldest, newest, counts[1] or '0', counts[2] or '0',
    counts[3] or '0', counts[4] or '0', max_entries_text, max_bytes_text}
end

if op == 'set_bound' then
  -- ARGV[6], ARGV[7]: the new maxEntries and maxBytes, for every instance
  redis.call('HSET', BOUND, 'maxEntries', ARGV[6], 'maxBytes', ARGV[7])
  max_entries, max_bytes = tonumber(ARGV[6]), tonumber(ARGV[7])
  advance()
  return enforce()
end

if op == 'bound' then
  return redis.call('HMGET', BOUND, 'maxEntries', 'maxBytes')
end

return redis.error_reply('unknown cache op ' .. tostring(op))
