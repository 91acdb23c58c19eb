-- list: ARGV[7]: 'all', 'status' or 'user'; ARGV[8]: the status or user;
-- ARGV[9], ARGV[10]: offset and count (at most BATCH: the caller pages).
-- Replies the jobs in enqueue order; one found gone is left out (and,
-- listing a user, taken out of that user's index), so a page may come
-- back short: the caller asks from offset + count next.
local kind = ARGV[7]
local set = ALL
if kind == 'status' then set = BY_STATUS[tonumber(ARGV[8])] end
if kind == 'user' then
  set = user_key(ARGV[8])
  guard(set, 'zset')
end
if can_write(STAT) then advance() end
local offset = tonumber(ARGV[9])
local count = math.min(tonumber(ARGV[10]), BATCH)
local jobs = {}
if count <= 0 then return respond(jobs) end
for _, m in ipairs(redis.call('ZRANGE', set, offset, offset + count - 1)) do
  local job = read(m)
  if job then
    jobs[#jobs + 1] = job
  elseif kind == 'user' then
    redis.call('ZREM', set, m)
  end
end
return respond(jobs)
