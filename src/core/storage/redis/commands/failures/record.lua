-- record: ARGV[4]: the record's id (chosen by the instance: a record sent
-- again after a lost reply counts once), ARGV[5]: service, ARGV[6]: now,
-- ARGV[7]: the encoded failure, ARGV[8]: its bytes. Replies with the
-- bounds it applied.
local id, name, now = ARGV[4], ARGV[5], ARGV[6]
local bytes = tonumber(ARGV[8])
local applied = {max_per_service, max_services, max_bytes}
if redis.call('ZSCORE', RID, id) then return applied end
local known = redis.call('ZSCORE', SVC, name)
-- A new service makes room for itself among the services.
local gone = {}
if not known then gone = beyond(max_services - 1, BATCH) end
local oldest, owners = over_bytes(bytes, nil, BATCH)
local touched = {name}
for _, other in ipairs(gone) do touched[#touched + 1] = other end
for _, other in ipairs(owners) do touched[#touched + 1] = other end
guard_services(touched)
writable(STAT)
drop_oldest(oldest, owners)
local seq = redis.call('INCR', SEQ)
local m = string.format('%016d', seq)
redis.call('HSET', REC, m, ARGV[7])
redis.call('HSET', RB, m, bytes)
redis.call('HSET', RS, m, name)
redis.call('INCRBY', BYTES, bytes)
redis.call('ZADD', ALL, seq, m)
redis.call('ZADD', log_key(name), seq, m)
redis.call('ZADD', times_key(name), now, m)
redis.call('ZADD', SVC, seq, name)
redis.call('ZADD', RID, seq, id)
local over = redis.call('ZCARD', RID) - RID_MAX
if over > 0 then redis.call('ZREMRANGEBYRANK', RID, 0, over - 1) end
-- Bounded like every run: a bound lowered a long way is applied by
-- `fit`, and by later records, a batch at a time.
if known then
  trim(name, max_per_service, CLEAR_FAILURES)
else
  forget_all(gone, CLEAR_FAILURES)
end
return applied
