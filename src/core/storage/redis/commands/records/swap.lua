-- swap: ARGV[1]: now (ms); ARGV[2]: the number of records; then five
-- arguments per record: its kind, its name, what the instance expects it
-- to hold ('?' not known, '-' nothing, '=' .. the text), when the new
-- text expires ('' to leave the record as it is) and the new text.
-- Writes only when every record holds what was expected: {1}. Otherwise
-- writes nothing and gives what each holds: {0, text or nil, ...}.
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local held = {}
local same = true
for i = 1, n do
  local at = 2 + (i - 1) * 5
  local key = record_key(ARGV[at + 1], ARGV[at + 2])
  guard(key, 'string')
  guard(index_key(ARGV[at + 1]), 'zset')
  held[i] = redis.call('GET', key)
  local expected = ARGV[at + 3]
  if expected == '?' then
    same = false
  elseif expected == '-' then
    if held[i] then same = false end
  elseif not held[i] or '=' .. held[i] ~= expected then
    same = false
  end
end
if not same then
  local reply = {0}
  for i = 1, n do reply[i + 1] = held[i] end
  return reply
end
local wrote = false
for i = 1, n do
  local at = 2 + (i - 1) * 5
  if ARGV[at + 4] ~= '' then
    if not wrote then
      writable(STAT)
      wrote = true
    end
    local kind, name = ARGV[at + 1], ARGV[at + 2]
    local ms = math.max(1, tonumber(ARGV[at + 4]) - now)
    redis.call('SET', record_key(kind, name), ARGV[at + 5], 'PX', ms)
    redis.call('ZADD', index_key(kind), ARGV[at + 4], name)
    redis.call('ZREMRANGEBYSCORE', index_key(kind), '-inf', now)
  end
end
return {1}
