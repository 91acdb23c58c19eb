-- list: ARGV[1]: the kind; ARGV[2]: now (ms). The live records of the
-- kind, at most 1000: {name, text, name, text, ...}.
local index = index_key(ARGV[1])
guard(index, 'zset')
local names = redis.call('ZRANGEBYSCORE', index, '(' .. ARGV[2], '+inf', 'LIMIT', 0, 1000)
local reply = {}
for _, name in ipairs(names) do
  local text = redis.call('GET', record_key(ARGV[1], name))
  if text then
    reply[#reply + 1] = name
    reply[#reply + 1] = text
  end
end
return reply
