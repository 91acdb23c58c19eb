-- The job queue's shared part (prepended to each queue command after
-- guards.lua): its keys, its settings and the transitions every command
-- applies the same way (the same rules as the memory and SQLite queues:
-- src/core/queue/job.rs).
--
-- KEYS[1]: the key head, "{prefix}:q:" (every key shares the hash tag, so
--   a command runs on one Redis Cluster node; per-job and per-user keys
--   are made from it). KEYS[2..]: the fixed keys, head .. NAMES[i - 1]:
--   seq        string: last sequence number (INCR), enqueue order
--   fin        string: last finish rank, the order finished jobs go in
--   ids        hash id -> member
--   bound      hash maxSize, maxBytes: the bounds set by the last configure
--   bytes      hash all, done: what every job, and the finished ones, hold
--   all        zset m by seq: every job, enqueue order
--   ready      zset m by rank (priority, then age; ties by m)
--   delayed    zset m by next retry time
--   leased     zset m by lease end
--   done       zset m by finish rank
--   gone       zset id by the time its job was removed: the last GONE_MAX,
--              so that a late re-sent enqueue of a finished job is a no-op
--   tok        hash lease token -> m, for the jobs processing now
--   revoked    zset token by time: leases given up on (their reply was
--              lost); the last REVOKED_MAX, refused if they arrive late
--   stat       hash writes (the probe), missing (jobs found gone)
--   sz         hash m -> the job's bytes, kept apart from its hash so a
--              job whose hash is gone can still be taken out of the totals
--   st:0..3    zset m by seq: jobs by status (pending, processing,
--              completed, failed)
--   wake       list: one item per job made pending (at most WAKE_MAX), the
--              signal idle workers wait on with BLPOP; emptied by a lease
--              that finds nothing ready (what is left then is stale)
-- and, made from the head: job:<m> (hash, one job; m = its sequence
-- number as 16 digits, so members sort like numbers) and user:<u> (zset m
-- by seq: one user's jobs).
--
-- ARGV[1..6]: now, leaseMs, backoff delays ("60000,300000,..."), maxSize
-- and maxBytes (the caller's; those stored in "bound" win), maxStalls;
-- the command's own arguments follow from ARGV[7].
--
-- Every command returns {result, dropped}: dropped counts the jobs it
-- found gone (their hash deleted or evicted, or not a job of this
-- library) and took out of the indexes, so the next job is served.

local head = KEYS[1]
local NAMES = {'seq', 'fin', 'ids', 'bound', 'bytes', 'all', 'ready', 'delayed', 'leased', 'done',
  'gone', 'tok', 'revoked', 'stat', 'sz', 'st:0', 'st:1', 'st:2', 'st:3', 'wake'}
local KINDS = {'string', 'string', 'hash', 'hash', 'hash', 'zset', 'zset', 'zset', 'zset', 'zset',
  'zset', 'hash', 'zset', 'hash', 'hash', 'zset', 'zset', 'zset', 'zset', 'list'}
local SEQ, FIN, IDS, BOUND, BYTES, ALL, READY, DELAYED, LEASED, DONE = KEYS[2], KEYS[3], KEYS[4],
  KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local GONE, TOKENS, REVOKED, STAT, SIZES = KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16]
local BY_STATUS = {[0] = KEYS[17], KEYS[18], KEYS[19], KEYS[20]}
local WAKE = KEYS[21]

guard_keys(KINDS)

local now = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[2])
local backoff_text = ARGV[3]
local max_size = tonumber(redis.call('HGET', BOUND, 'maxSize') or ARGV[4])
local max_bytes = tonumber(redis.call('HGET', BOUND, 'maxBytes') or ARGV[5])
local max_stalls = tonumber(ARGV[6])

-- What a job's hash holds, in the order read() replies it (the Rust side
-- reads the first 17); then its bytes and its lease token.
local FIELDS = {'seq', 'id', 'type', 'op', 'payload', 'user', 'prio', 'created',
  'retries', 'max', 'next', 'status', 'err', 'updated', 'lease', 'fin', 'stalls', 'bytes', 'tok'}
local PENDING, PROCESSING, COMPLETED, FAILED = 0, 1, 2, 3
local MAX_DATE = 8640000000000000
local LEASE_EXPIRED = 'lease expired'
-- Jobs per command run, so that no run holds the server long at any
-- size: read (listings, time's changes), and removed or revived.
local BATCH = 100
local CHANGE_BATCH = 50
local GONE_MAX = 100000
local REVOKED_MAX = 10000
-- Wake signals held at most: enough to wake as many idle workers as jobs
-- arrive at once; a worker woken leases as many as it may anyway.
local WAKE_MAX = 1000

local dropped = 0

local function job_key(m) return head .. 'job:' .. m end
local function user_key(u) return head .. 'user:' .. u end

local function field(m, name)
  return redis.call('HGET', job_key(m), name)
end

local function number(m, name)
  return tonumber(field(m, name))
end

local function add_ms(at, ms)
  return math.min(at + ms, MAX_DATE)
end

local function count_bytes(which, delta)
  if delta ~= 0 then redis.call('HINCRBY', BYTES, which, delta) end
end

local function held_bytes(which)
  return tonumber(redis.call('HGET', BYTES, which) or '0')
end

-- Takes a job that is gone (its hash deleted or evicted, or foreign data
-- in its place, left alone) out of every index it can be found in; its
-- bytes leave the totals. Its id and user index are cleaned up when next
-- met (member_of, the user listing).
local function drop_missing(m)
  -- Counted once: the first command to meet it takes it out of "all".
  local counted = redis.call('ZREM', ALL, m) == 1
  local bytes = tonumber(redis.call('HGET', SIZES, m)) or 0
  count_bytes('all', -bytes)
  if redis.call('ZREM', DONE, m) == 1 then count_bytes('done', -bytes) end
  redis.call('HDEL', SIZES, m)
  for _, key in ipairs({READY, DELAYED, LEASED}) do redis.call('ZREM', key, m) end
  for s = 0, 3 do redis.call('ZREM', BY_STATUS[s], m) end
  if counted then
    redis.call('HINCRBY', STAT, 'missing', 1)
    dropped = dropped + 1
  end
end

local TYPES = {ai = true, integration = true, analytics = true, notification = true}

-- Whether `value` is a whole number from `low` to `high` (no bound: nil).
local function whole(value, low, high)
  local n = tonumber(value)
  return n ~= nil and n == math.floor(n) and n >= low and (high == nil or n <= high)
end

-- Whether `job` (read() fields) is a job this library can hand out.
local function sound(job)
  return whole(job[1], 1) and type(job[2]) == 'string' and TYPES[job[3]] ~= nil
    and type(job[4]) == 'string' and type(job[6]) == 'string' and whole(job[7], 0, 2)
    and whole(job[8], 0) and whole(job[9], 0) and whole(job[10], 0) and whole(job[12], 0, 3)
end

-- Takes job m out of every index and counts it with the jobs found gone; a
-- hash of ours that cannot be read is kept aside as damaged:<m> for an
-- operator to look at (foreign data in its place is left alone).
local function set_aside(m)
  if key_type(job_key(m)) == 'hash' then
    local token = field(m, 'tok')
    if token then redis.call('HDEL', TOKENS, token) end
    redis.call('RENAME', job_key(m), head .. 'damaged:' .. m)
  end
  drop_missing(m)
end

-- The job's fields (FIELDS order), or nil when m is not a job of this
-- library (its hash gone, foreign data in its place, or fields no job
-- has): then it is set aside.
local function read(m)
  local held = redis.pcall('HMGET', job_key(m), unpack(FIELDS))
  if held['err'] == nil and sound(held) then return held end
  set_aside(m)
  return nil
end

-- Whether m is a job of this library; one that is not is dropped.
local function valid(m)
  return read(m) ~= nil
end

-- The member of job `id`, or nil; an id whose job is gone is forgotten.
local function member_of(id)
  local m = redis.call('HGET', IDS, id)
  if not m then return nil end
  if valid(m) then return m end
  redis.call('HDEL', IDS, id)
  return nil
end

-- The member of job `id` when it is pending or processing, or nil.
local function live_member(id)
  local m = member_of(id)
  if not m then return nil end
  local status = number(m, 'status')
  if status ~= PENDING and status ~= PROCESSING then return nil end
  return m
end

local function delay(retry)
  local delays = {}
  for d in string.gmatch(backoff_text, '[^,]+') do delays[#delays + 1] = tonumber(d) end
  local index = math.min(math.max(retry, 1), #delays)
  return delays[index]
end

-- Higher priority first (prio 2 is high), then older.
local function rank(m)
  local age = math.min(number(m, 'created'), 35184372088831) -- 2^45 - 1
  return (2 - number(m, 'prio')) * 35184372088832 + age
end

-- Tells idle workers (blocked on WAKE) that a job is pending: ready now,
-- or due later (the worker woken learns when from its empty lease).
local function signal()
  if redis.call('LLEN', WAKE) < WAKE_MAX then redis.call('RPUSH', WAKE, 1) end
end

-- Puts a job into the lane of its status (out of every other).
local function place(m)
  redis.call('ZREM', READY, m)
  redis.call('ZREM', DELAYED, m)
  redis.call('ZREM', LEASED, m)
  redis.call('ZREM', DONE, m)
  local status = number(m, 'status')
  if status == PENDING then
    local due = number(m, 'next')
    if due and due > now then
      redis.call('ZADD', DELAYED, due, m)
    else
      redis.call('ZADD', READY, rank(m), m)
    end
    signal()
  elseif status == PROCESSING then
    redis.call('ZADD', LEASED, number(m, 'lease'), m)
  else
    redis.call('ZADD', DONE, number(m, 'fin'), m)
  end
end

local function finished(status)
  return status == COMPLETED or status == FAILED
end

-- The job leaves its lease: its token no longer finds it.
local function untoken(m)
  local token = field(m, 'tok')
  if token then
    redis.call('HDEL', TOKENS, token)
    redis.call('HDEL', job_key(m), 'tok')
  end
  redis.call('HDEL', job_key(m), 'lease')
end

local function set_status(m, status)
  local before = number(m, 'status')
  if finished(status) ~= finished(before) then
    local bytes = number(m, 'bytes') or 0
    if finished(status) then count_bytes('done', bytes) else count_bytes('done', -bytes) end
  end
  if before == PROCESSING and status ~= PROCESSING then untoken(m) end
  redis.call('ZREM', BY_STATUS[before], m)
  redis.call('ZADD', BY_STATUS[status], number(m, 'seq'), m)
  redis.call('HSET', job_key(m), 'status', status)
  if finished(status) then
    redis.call('HSET', job_key(m), 'fin', redis.call('INCR', FIN))
  end
end

-- A failed attempt at `at`: pending after the backoff, or failed for good.
local function fail_attempt(m, error_text, at)
  local retries = number(m, 'retries') + 1
  local grown = #error_text - #(field(m, 'err') or '')
  redis.call('HINCRBY', job_key(m), 'bytes', grown)
  redis.call('HINCRBY', SIZES, m, grown)
  count_bytes('all', grown)
  redis.call('HSET', job_key(m), 'retries', retries, 'err', error_text, 'updated', at)
  if retries >= number(m, 'max') then
    set_status(m, FAILED)
  else
    set_status(m, PENDING)
    redis.call('HSET', job_key(m), 'next', add_ms(at, delay(retries)))
  end
  place(m)
end

-- Back to pending, ready now, its retry count unchanged.
local function release(m)
  set_status(m, PENDING)
  redis.call('HDEL', job_key(m), 'next')
  redis.call('HSET', job_key(m), 'updated', now)
  place(m)
end

-- A processing job's lease ended without an outcome from its worker: the
-- lease ran out (`expired`: a failed attempt dated at its deadline) or
-- its worker's thread or process ended (handed back untried). Counted;
-- past maxStalls either is a failed attempt that says so (the same text
-- as Job::stall in src/core/queue/job.rs).
local function stall(m, expired, at)
  local stalls = redis.call('HINCRBY', job_key(m), 'stalls', 1)
  if stalls > max_stalls then
    fail_attempt(m, 'stalled ' .. stalls .. ' times (maxStalls ' .. max_stalls ..
      '): its worker ended or lost its lease while running it', at)
  elseif expired then
    fail_attempt(m, LEASE_EXPIRED, at)
  else
    release(m)
  end
end

-- What time alone changes, at most BATCH jobs of each kind per run:
-- expired leases are stalls dated at their deadline; retry delays that
-- ran out make their jobs ready.
local function advance()
  local expired = redis.call('ZRANGEBYSCORE', LEASED, '-inf', '(' .. now, 'LIMIT', 0, BATCH)
  for _, m in ipairs(expired) do
    if valid(m) then stall(m, true, number(m, 'lease')) end
  end
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, BATCH)
  for _, m in ipairs(due) do
    if valid(m) then
      redis.call('ZREM', DELAYED, m)
      redis.call('ZADD', READY, rank(m), m)
    end
  end
end

-- Removes job m for good (`job`: its fields, as read() gave them); its
-- id is remembered in "gone".
local function forget(m, job)
  local id, user, status = job[2], job[6], tonumber(job[12])
  local bytes = tonumber(job[18]) or 0
  count_bytes('all', -bytes)
  if finished(status) then count_bytes('done', -bytes) end
  if job[19] then redis.call('HDEL', TOKENS, job[19]) end
  redis.call('DEL', job_key(m))
  redis.call('HDEL', SIZES, m)
  redis.call('HDEL', IDS, id)
  redis.call('ZREM', ALL, m)
  redis.call('ZREM', BY_STATUS[status], m)
  if status == PENDING then
    redis.call('ZREM', READY, m)
    redis.call('ZREM', DELAYED, m)
  elseif status == PROCESSING then
    redis.call('ZREM', LEASED, m)
  else
    redis.call('ZREM', DONE, m)
  end
  if key_type(user_key(user)) == 'zset' then redis.call('ZREM', user_key(user), m) end
  redis.call('ZADD', GONE, now, id)
  local over = redis.call('ZCARD', GONE) - GONE_MAX
  if over > 0 then redis.call('ZREMRANGEBYRANK', GONE, 0, over - 1) end
end

-- Drops finished jobs, first finished first, until `count` jobs and
-- `bytes` bytes have gone, none is left, or `limit` went in this run.
-- Returns whether it stopped at the limit with more to do.
local function evict_finished(count, bytes, limit)
  local evicted = 0
  while count > 0 or bytes > 0 do
    local m = redis.call('ZRANGE', DONE, 0, 0)[1]
    if not m then return false end
    if evicted >= limit then return true end
    local job = read(m)
    if job then
      bytes = bytes - (tonumber(job[18]) or 0)
      count = count - 1
      forget(m, job)
    end
    evicted = evicted + 1
  end
  return false
end

local function total()
  return redis.call('ZCARD', ALL)
end

-- Extends processing job m's lease from now.
local function extend(m)
  redis.call('HSET', job_key(m), 'updated', now, 'lease', add_ms(now, lease_ms))
  place(m)
end

-- Hands job m to the worker that asked with `token`.
local function lease(m, token)
  set_status(m, PROCESSING)
  redis.call('HSET', job_key(m), 'updated', now, 'lease', add_ms(now, lease_ms), 'tok', token)
  redis.call('HSET', TOKENS, token, m)
  place(m)
  return redis.call('HMGET', job_key(m), unpack(FIELDS))
end

-- Records a worker's outcome of job `id` ('complete', or 'fail' with
-- `error_text`), only while the job is processing under lease `token`
-- (found by the token, so a lost "ids" entry does not stop it). Returns
-- the job's member, or nil when nothing was recorded.
local function record_outcome(token, id, how, error_text)
  local m = redis.call('HGET', TOKENS, token)
  if not m then return nil end
  local job = read(m)
  if not job or tonumber(job[12]) ~= PROCESSING or job[19] ~= token or job[2] ~= id then
    return nil
  end
  if how == 'complete' then
    set_status(m, COMPLETED)
    redis.call('HSET', job_key(m), 'updated', now)
    place(m)
  else
    fail_attempt(m, error_text, now)
  end
  return m
end

-- The best ready job leased under `token` (its fields), or false; any
-- found gone on the way is dropped. A token revoked already (its worker
-- gave up on the reply) leases nothing.
local function lease_best(token)
  if redis.call('ZSCORE', REVOKED, token) then return false end
  for _ = 1, BATCH do
    local m = redis.call('ZRANGE', READY, 0, 0)[1]
    if not m then return false end
    if valid(m) then return lease(m, token) end
  end
  return false
end

-- Nothing is ready: the wake signals left are stale (emptied, so an idle
-- worker does not wake for them), and the reply says when a job may be
-- next: the first retry time or lease end, or false when none is held.
local function idle_due()
  redis.call('DEL', WAKE)
  local delayed = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')[2]
  local leased = redis.call('ZRANGE', LEASED, 0, 0, 'WITHSCORES')[2]
  local due = math.min(tonumber(delayed) or MAX_DATE, tonumber(leased) or MAX_DATE)
  if due >= MAX_DATE then return false end
  return due
end

local function respond(result)
  return {result, dropped}
end
