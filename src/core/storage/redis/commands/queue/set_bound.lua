-- set_bound: ARGV[7], ARGV[8]: the new maxSize and maxBytes, for every
-- instance; then evicts finished jobs beyond them, at most CHANGE_BATCH per run.
-- Replies 1 when more remain to evict (the caller runs `evict`).
writable(STAT)
redis.call('HSET', BOUND, 'maxSize', ARGV[7], 'maxBytes', ARGV[8])
max_size, max_bytes = tonumber(ARGV[7]), tonumber(ARGV[8])
advance()
if evict_finished(total() - max_size, held_bytes('all') - max_bytes, CHANGE_BATCH) then
  return respond(1)
end
return respond(0)
