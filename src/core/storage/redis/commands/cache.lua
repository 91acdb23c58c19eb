-- The response cache's shared part (prepended to each cache command after
-- guards.lua): the same rules as the memory and SQLite caches
-- (src/core/cache/memory.rs).
--
-- KEYS[1]: the key head, "{prefix}:c:" (every key shares the hash tag);
-- KEYS[2..]: the fixed keys, head .. NAMES[i - 1]:
--   used    zset d by use tick: every entry held, least recently used first
--   live    zset d by expires at: entries within their TTL
--   born    zset d by timestamp: the same entries (oldestEntry, newestEntry)
--   stale   zset d by expires at: expired entries kept for stale-if-error
--   tot     hash: tick (the last use tick), held and live (bytes), hits,
--           misses, evictions, writes (the probe)
--   bound   hash: maxEntries, maxBytes, set by the last configure
-- and, made from the head, e:<d>: one entry, a hash of p (prompt), m
-- (model id), r (response JSON), t (timestamp), x (expires at), b (bytes:
-- prompt + response); d = the key's 128-bit digest in hex. The key itself
-- is stored and compared, so a digest collision is a miss, never another
-- key's answer.
--
-- ARGV[1..4]: now ('' for the commands that take no time: delete,
-- clear), purgeBefore (now - staleIfErrorMs: entries that expired before
-- it are past their grace), maxEntries, maxBytes (the caller's; the bounds
-- stored in "bound" win); the command's own arguments follow from ARGV[5].
-- Instants and sizes arrive as decimal text and are written back as that
-- text, never through Lua's number formatting.

local head = KEYS[1]
local NAMES = {'used', 'live', 'born', 'stale', 'tot', 'bound'}
local KINDS = {'zset', 'zset', 'zset', 'zset', 'hash', 'hash'}
local USED, LIVE, BORN, STALE, TOT, BOUND = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

guard_keys(KINDS)

local now = ARGV[1]
local purge_before = tonumber(ARGV[2])
-- Entries moved or dropped by time, and evicted by a bound, per run;
-- removed by clear.
local BATCH = 500
local CLEAR_BATCH = 250

local function entry(d) return head .. 'e:' .. d end

-- A bound as text and as a number: the stored one, when it is a number.
local function bound(stored, given)
  if tonumber(stored) then return stored, tonumber(stored) end
  return given, tonumber(given)
end
local stored = redis.call('HMGET', BOUND, 'maxEntries', 'maxBytes')
local max_entries_text, max_entries = bound(stored[1], ARGV[3])
local max_bytes_text, max_bytes = bound(stored[2], ARGV[4])

local function count(field, by)
  if by ~= 0 then redis.call('HINCRBY', TOT, field, by) end
end

local function total(field)
  return tonumber(redis.call('HGET', TOT, field)) or 0
end

local function bytes_of(d)
  if key_type(entry(d)) ~= 'hash' then return 0 end
  return tonumber(redis.call('HGET', entry(d), 'b')) or 0
end

-- Marks d the most recently used entry.
local function touch(d)
  redis.call('ZADD', USED, redis.call('HINCRBY', TOT, 'tick', 1), d)
end

-- Forgets d everywhere (a key of another kind in its place is left alone).
local function remove(d)
  local bytes = bytes_of(d)
  if key_type(entry(d)) == 'hash' then redis.call('DEL', entry(d)) end
  if redis.call('ZREM', LIVE, d) == 1 then count('live', -bytes) end
  redis.call('ZREM', BORN, d)
  redis.call('ZREM', STALE, d)
  redis.call('ZREM', USED, d)
  count('held', -bytes)
end

-- What time alone changes, at most BATCH entries of each kind per run:
-- entries past their TTL become stale, or go when they are past their
-- grace too. Each entry passes here once or twice in its life.
local function advance()
  if now == '' then return end
  local gone = redis.call('ZRANGEBYSCORE', STALE, '-inf', '(' .. ARGV[2], 'LIMIT', 0, BATCH)
  for _, d in ipairs(gone) do remove(d) end
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
end

-- Evicts until the bounds hold, at most `limit` entries: stale entries
-- first (soonest expired first), then the least recently used. Returns
-- how many went and whether more must go.
local function enforce(limit)
  local evicted = 0
  while redis.call('ZCARD', USED) > max_entries or total('held') > max_bytes do
    if evicted >= limit then
      count('evictions', evicted)
      return evicted, true
    end
    local victim = redis.call('ZRANGE', STALE, 0, 0)[1] or redis.call('ZRANGE', USED, 0, 0)[1]
    if not victim then break end
    remove(victim)
    evicted = evicted + 1
  end
  count('evictions', evicted)
  return evicted, false
end

-- Counts the uses lookups left (ARGV[from]: hits, ARGV[from + 1]:
-- misses) and marks the digests after them used, those still held only.
local function note_uses(from)
  count('hits', tonumber(ARGV[from]) or 0)
  count('misses', tonumber(ARGV[from + 1]) or 0)
  local touched = #ARGV - from - 1
  if touched <= 0 then return end
  -- One tick each, in the order given, in two commands: XX leaves an
  -- entry gone meanwhile gone.
  local last = redis.call('HINCRBY', TOT, 'tick', touched)
  local pairs = {}
  for i = from + 2, #ARGV do
    pairs[#pairs + 1] = last - (#ARGV - i)
    pairs[#pairs + 1] = ARGV[i]
  end
  redis.call('ZADD', USED, 'XX', unpack(pairs))
end

-- Whether d's entry holds exactly this key (ARGV[6], ARGV[7]).
local function is_key(d)
  local held = redis.call('HMGET', entry(d), 'p', 'm')
  return held[1] == ARGV[6] and held[2] == ARGV[7]
end
