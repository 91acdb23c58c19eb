-- The job queue's transitions, one atomic script per state change (the
-- same rules as the memory and SQLite queues: src/core/queue/job.rs).
--
-- KEYS[1]: the queue's key head, "{prefix}:q:" (every key shares the hash
--   tag, so the script runs on one Redis Cluster node).
-- ARGV: op, now, leaseMs, backoff delays ("60000,300000,..."), maxSize and
--   maxBytes (the caller's; the bounds stored in "bound" win, as in a
--   SQLite file), then the op's own arguments.
--
-- Keys under the head:
--   seq        last sequence number (INCR): enqueue order, across instances
--   fin        last finish rank: the order finished jobs are evicted in
--   ids        hash id -> member
--   bound      hash maxSize, maxBytes -> the bounds set by the last configure
--   bytes      hash all, done -> what every job, and the finished ones, hold
--              (Job::stored_bytes: each job keeps its own in field "bytes")
--   job:<m>    hash, one job (fields below); m = the sequence number as 16
--              digits, so members sort like their numbers
--   all        zset m by seq: every job, enqueue order
--   st:<0..3>  zset m by seq: jobs by status (pending, processing,
--              completed, failed): the counts, and getByStatus pages
--   user:<u>   zset m by seq: one user's jobs
--   ready      zset m by rank (priority, then age; ties by m)
--   delayed    zset m by next retry time
--   leased     zset m by lease end
--   done       zset m by finish rank

local head = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local backoff_text = ARGV[4]
local max_size = tonumber(redis.call('HGET', head .. 'bound', 'maxSize') or ARGV[5])
local max_bytes = tonumber(redis.call('HGET', head .. 'bound', 'maxBytes') or ARGV[6])

local FIELDS = {'seq', 'id', 'type', 'op', 'payload', 'user', 'prio', 'created',
  'retries', 'max', 'next', 'status', 'err', 'updated', 'lease', 'fin'}
local PENDING, PROCESSING, COMPLETED, FAILED = 0, 1, 2, 3
local MAX_DATE = 8640000000000000

local function job_key(m) return head .. 'job:' .. m end

local function field(m, name)
  return redis.call('HGET', job_key(m), name)
end

local function number(m, name)
  return tonumber(field(m, name))
end

local function read(m)
  return redis.call('HMGET', job_key(m), unpack(FIELDS))
end

local function add_ms(at, ms)
  return math.min(at + ms, MAX_DATE)
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

-- Puts a job into the lane of its status (out of every other).
local function place(m)
  redis.call('ZREM', head .. 'ready', m)
  redis.call('ZREM', head .. 'delayed', m)
  redis.call('ZREM', head .. 'leased', m)
  redis.call('ZREM', head .. 'done', m)
  local status = number(m, 'status')
  if status == PENDING then
    local due = number(m, 'next')
    if due and due > now then
      redis.call('ZADD', head .. 'delayed', due, m)
    else
      redis.call('ZADD', head .. 'ready', rank(m), m)
    end
  elseif status == PROCESSING then
    redis.call('ZADD', head .. 'leased', number(m, 'lease'), m)
  else
    redis.call('ZADD', head .. 'done', number(m, 'fin'), m)
  end
end

local function held_bytes(which)
  return tonumber(redis.call('HGET', head .. 'bytes', which) or '0')
end

local function count_bytes(which, delta)
  if delta ~= 0 then redis.call('HINCRBY', head .. 'bytes', which, delta) end
end

local function finished(status)
  return status == COMPLETED or status == FAILED
end

local function set_status(m, status)
  local before = number(m, 'status')
  local seq = number(m, 'seq')
  if finished(status) ~= finished(before) then
    local bytes = number(m, 'bytes') or 0
    if finished(status) then count_bytes('done', bytes) else count_bytes('done', -bytes) end
  end
  redis.call('ZREM', head .. 'st:' .. before, m)
  redis.call('ZADD', head .. 'st:' .. status, seq, m)
  redis.call('HSET', job_key(m), 'status', status)
  if status == COMPLETED or status == FAILED then
    redis.call('HSET', job_key(m), 'fin', redis.call('INCR', head .. 'fin'))
  end
end

-- A failed attempt at `at`: pending after the backoff, or failed for good.
local function fail_attempt(m, error_text, at)
  local retries = number(m, 'retries') + 1
  local grown = #error_text - #(field(m, 'err') or '')
  redis.call('HINCRBY', job_key(m), 'bytes', grown)
  count_bytes('all', grown)
  redis.call('HSET', job_key(m), 'retries', retries, 'err', error_text, 'updated', at)
  redis.call('HDEL', job_key(m), 'lease')
  if retries >= number(m, 'max') then
    set_status(m, FAILED)
  else
    set_status(m, PENDING)
    redis.call('HSET', job_key(m), 'next', add_ms(at, delay(retries)))
  end
  place(m)
end

-- What time alone changes: expired leases are failed attempts dated at
-- their deadline; retry delays that ran out make their jobs ready.
local function advance()
  local expired = redis.call('ZRANGEBYSCORE', head .. 'leased', '-inf', '(' .. now, 'LIMIT', 0, 1000)
  for _, m in ipairs(expired) do
    fail_attempt(m, 'lease expired', number(m, 'lease'))
  end
  local due = redis.call('ZRANGEBYSCORE', head .. 'delayed', '-inf', now, 'LIMIT', 0, 1000)
  for _, m in ipairs(due) do
    redis.call('ZREM', head .. 'delayed', m)
    redis.call('ZADD', head .. 'ready', rank(m), m)
  end
end

local function forget(m)
  local id = field(m, 'id')
  local user = field(m, 'user')
  local bytes = number(m, 'bytes') or 0
  count_bytes('all', -bytes)
  if finished(number(m, 'status')) then count_bytes('done', -bytes) end
  redis.call('DEL', job_key(m))
  redis.call('HDEL', head .. 'ids', id)
  redis.call('ZREM', head .. 'all', m)
  for s = 0, 3 do redis.call('ZREM', head .. 'st:' .. s, m) end
  redis.call('ZREM', head .. 'done', m)
  if user then
    redis.call('ZREM', head .. 'user:' .. user, m)
    if redis.call('ZCARD', head .. 'user:' .. user) == 0 then
      redis.call('DEL', head .. 'user:' .. user)
    end
  end
end

-- Drops finished jobs, first finished first, until `count` jobs and
-- `bytes` bytes have gone (or none is left).
local function evict_finished(count, bytes)
  while count > 0 or bytes > 0 do
    local m = redis.call('ZRANGE', head .. 'done', 0, 0)[1]
    if not m then return end
    bytes = bytes - (number(m, 'bytes') or 0)
    count = count - 1
    forget(m)
  end
end

local function total()
  return redis.call('ZCARD', head .. 'all')
end

local function member_of(id)
  local m = redis.call('HGET', head .. 'ids', id)
  if m and redis.call('EXISTS', job_key(m)) == 1 then return m end
  return nil
end

local function lease(m)
  set_status(m, PROCESSING)
  redis.call('HSET', job_key(m), 'updated', now, 'lease', add_ms(now, lease_ms))
  place(m)
  return read(m)
end

if op == 'enqueue' then
  -- ARGV[7..]: id, type, op, payload ('' with hasPayload '0'), hasPayload,
  -- user, prio, retries, max, next ('' for none)
  -- ARGV[17]: the job's bytes (Job::stored_bytes)
  advance()
  -- A job already held (its first write reached the server, the reply was
  -- lost) is held: a full queue must not refuse it again, or the kept copy
  -- would wait in the outbox for ever.
  if redis.call('HEXISTS', head .. 'ids', ARGV[7]) == 1 then
    return {'DUPLICATE'}
  end
  local over = total() + 1 - max_size
  if over > redis.call('ZCARD', head .. 'done') then
    return {'FULL', tostring(max_size)}
  end
  local job_bytes = tonumber(ARGV[17])
  if job_bytes > max_bytes then
    return {'TOO_LARGE', tostring(max_bytes)}
  end
  local over_bytes = held_bytes('all') + job_bytes - max_bytes
  if over_bytes > held_bytes('done') then
    return {'FULL_BYTES', tostring(max_bytes), tostring(held_bytes('all') - held_bytes('done'))}
  end
  evict_finished(over, over_bytes)
  local seq = redis.call('INCR', head .. 'seq')
  local m = string.format('%016d', seq)
  local key = job_key(m)
  redis.call('HSET', key, 'seq', seq, 'id', ARGV[7], 'type', ARGV[8], 'op', ARGV[9],
    'user', ARGV[12], 'prio', ARGV[13], 'created', now, 'retries', ARGV[14],
    'max', ARGV[15], 'status', PENDING, 'updated', now, 'bytes', job_bytes)
  count_bytes('all', job_bytes)
  if ARGV[11] == '1' then redis.call('HSET', key, 'payload', ARGV[10]) end
  if ARGV[16] ~= '' then redis.call('HSET', key, 'next', ARGV[16]) end
  redis.call('HSET', head .. 'ids', ARGV[7], m)
  redis.call('ZADD', head .. 'all', seq, m)
  redis.call('ZADD', head .. 'st:' .. PENDING, seq, m)
  redis.call('ZADD', head .. 'user:' .. ARGV[12], seq, m)
  place(m)
  return {'OK', ARGV[7]}
end

if op == 'lease' then
  -- ARGV[7]: the member to lease ('' for the best ready job)
  advance()
  local m = ARGV[7]
  if m == '' then
    m = redis.call('ZRANGE', head .. 'ready', 0, 0)[1]
    if not m then return false end
  elseif not redis.call('ZSCORE', head .. 'ready', m) then
    return false
  end
  return lease(m)
end

if op == 'peek' then
  -- ARGV[7], ARGV[8]: offset and count of ready jobs, best first
  advance()
  local offset = tonumber(ARGV[7])
  local members = redis.call('ZRANGE', head .. 'ready', offset, offset + tonumber(ARGV[8]) - 1)
  local jobs = {}
  for i, m in ipairs(members) do jobs[i] = read(m) end
  return jobs
end

if op == 'keep' or op == 'renew' then
  -- keep: a worker that knows the job is running extends its lease even
  -- when it ran out unnoticed, so nothing advances first.
  if op == 'renew' then advance() end
  local m = member_of(ARGV[7])
  if not m or number(m, 'status') ~= PROCESSING then return 0 end
  redis.call('HSET', job_key(m), 'updated', now, 'lease', add_ms(now, lease_ms))
  place(m)
  return 1
end

if op == 'keep_all' then
  -- ARGV[7..]: the ids of a worker's running jobs; `keep` for each.
  for i = 7, #ARGV do
    local m = member_of(ARGV[i])
    if m and number(m, 'status') == PROCESSING then
      redis.call('HSET', job_key(m), 'updated', now, 'lease', add_ms(now, lease_ms))
      place(m)
    end
  end
  return 1
end

if op == 'release' or op == 'complete' or op == 'fail' then
  advance()
  local m = member_of(ARGV[7])
  if not m then return 0 end
  local status = number(m, 'status')
  if op == 'release' then
    if status ~= PROCESSING then return 0 end
    set_status(m, PENDING)
    redis.call('HDEL', job_key(m), 'lease', 'next')
    redis.call('HSET', job_key(m), 'updated', now)
    place(m)
    return 1
  end
  if status ~= PENDING and status ~= PROCESSING then return 0 end
  if op == 'complete' then
    set_status(m, COMPLETED)
    redis.call('HDEL', job_key(m), 'lease')
    redis.call('HSET', job_key(m), 'updated', now)
    place(m)
  else
    fail_attempt(m, ARGV[8], now)
  end
  return 1
end

if op == 'get' then
  advance()
  local m = member_of(ARGV[7])
  if not m then return false end
  return read(m)
end

if op == 'stats' then
  advance()
  return {
    redis.call('ZCARD', head .. 'st:0'), redis.call('ZCARD', head .. 'st:1'),
    redis.call('ZCARD', head .. 'st:2'), redis.call('ZCARD', head .. 'st:3'),
    held_bytes('all'),
  }
end

if op == 'ready' then
  -- advance() moves at most 1000 delayed jobs at a time; the rest that are
  -- due count too.
  advance()
  return redis.call('ZCARD', head .. 'ready') + redis.call('ZCOUNT', head .. 'delayed', '-inf', now)
end

if op == 'list' then
  -- ARGV[7]: 'all', 'status' or 'user'; ARGV[8]: the status or user;
  -- ARGV[9], ARGV[10]: offset and limit (-1: all)
  advance()
  local set = head .. 'all'
  if ARGV[7] == 'status' then set = head .. 'st:' .. ARGV[8] end
  if ARGV[7] == 'user' then set = head .. 'user:' .. ARGV[8] end
  local offset, limit = tonumber(ARGV[9]), tonumber(ARGV[10])
  local stop = -1
  if limit >= 0 then stop = offset + limit - 1 end
  if limit == 0 then return {} end
  local jobs = {}
  for i, m in ipairs(redis.call('ZRANGE', set, offset, stop)) do jobs[i] = read(m) end
  return jobs
end

if op == 'retry_failed' then
  -- ARGV[7]: one id, or '' for every failed job
  advance()
  local members
  if ARGV[7] == '' then
    members = redis.call('ZRANGE', head .. 'st:' .. FAILED, 0, -1)
  else
    local m = member_of(ARGV[7])
    members = {}
    if m and number(m, 'status') == FAILED then members[1] = m end
  end
  for _, m in ipairs(members) do
    set_status(m, PENDING)
    redis.call('HSET', job_key(m), 'retries', 0, 'updated', now)
    redis.call('HDEL', job_key(m), 'next', 'fin')
    place(m)
  end
  return #members
end

if op == 'clear_completed' then
  -- At most 5000 jobs per run, so that no run holds the server for long;
  -- replies how many went and whether any completed job is left.
  advance()
  local members = redis.call('ZRANGE', head .. 'st:' .. COMPLETED, 0, 4999)
  for _, m in ipairs(members) do forget(m) end
  return {#members, redis.call('ZCARD', head .. 'st:' .. COMPLETED)}
end

if op == 'set_bound' then
  -- ARGV[7], ARGV[8]: the new maxSize and maxBytes, for every instance
  redis.call('HSET', head .. 'bound', 'maxSize', ARGV[7], 'maxBytes', ARGV[8])
  max_size, max_bytes = tonumber(ARGV[7]), tonumber(ARGV[8])
  advance()
  evict_finished(total() - max_size, held_bytes('all') - max_bytes)
  return 1
end

if op == 'bound' then
  return redis.call('HMGET', head .. 'bound', 'maxSize', 'maxBytes')
end

return redis.error_reply('unknown queue op ' .. tostring(op))
