-- enqueue: ARGV[7..]: id, type, op, payload ('' with hasPayload '0'),
-- hasPayload, user, prio, retries, max, next ('' for none), the job's
-- bytes (Job::stored_bytes). Replies {'OK', id}, {'DUPLICATE'} (the id is
-- held, or was held by a job since removed: a late re-send of a job
-- already written is a no-op), {'FULL', maxSize},
-- {'FULL_BYTES', maxBytes, liveBytes} or {'TOO_LARGE', maxBytes}.
local id, user = ARGV[7], ARGV[12]
guard(user_key(user), 'zset')
-- The next free sequence number: after the last one handed out and the
-- highest held (should "seq" itself have been deleted or evicted), and
-- past any key in the way.
local seq = math.max(tonumber(redis.call('GET', SEQ)) or 0,
  tonumber(redis.call('ZRANGE', ALL, -1, -1, 'WITHSCORES')[2]) or 0)
repeat seq = seq + 1 until key_type(job_key(string.format('%016d', seq))) == 'none'
writable(STAT)
advance()
if redis.call('HEXISTS', IDS, id) == 1 or redis.call('ZSCORE', GONE, id) then
  return respond({'DUPLICATE'})
end
local job_bytes = tonumber(ARGV[17])
if job_bytes > max_bytes then
  return respond({'TOO_LARGE', tostring(max_bytes)})
end
local over = total() + 1 - max_size
if over > redis.call('ZCARD', DONE) then
  return respond({'FULL', tostring(max_size)})
end
local over_bytes = held_bytes('all') + job_bytes - max_bytes
if over_bytes > held_bytes('done') then
  return respond({'FULL_BYTES', tostring(max_bytes), tostring(held_bytes('all') - held_bytes('done'))})
end
-- At most a batch: after a bound was lowered a long way (by a set_bound
-- kept while the server was away), the rest goes a batch per enqueue.
evict_finished(over, over_bytes, CHANGE_BATCH)
redis.call('SET', SEQ, seq)
local m = string.format('%016d', seq)
local key = job_key(m)
redis.call('HSET', key, 'seq', seq, 'id', id, 'type', ARGV[8], 'op', ARGV[9],
  'user', user, 'prio', ARGV[13], 'created', now, 'retries', ARGV[14],
  'max', ARGV[15], 'status', PENDING, 'updated', now, 'bytes', job_bytes, 'stalls', 0)
redis.call('HSET', SIZES, m, job_bytes)
count_bytes('all', job_bytes)
if ARGV[11] == '1' then redis.call('HSET', key, 'payload', ARGV[10]) end
if ARGV[16] ~= '' then redis.call('HSET', key, 'next', ARGV[16]) end
redis.call('HSET', IDS, id, m)
redis.call('ZADD', ALL, seq, m)
redis.call('ZADD', BY_STATUS[PENDING], seq, m)
redis.call('ZADD', user_key(user), seq, m)
place(m)
return respond({'OK', id})
