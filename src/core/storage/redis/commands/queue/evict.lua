-- evict: evicts finished jobs beyond the stored bounds, at most CHANGE_BATCH per
-- run. Replies 1 when more remain.
writable(STAT)
advance()
if evict_finished(total() - max_size, held_bytes('all') - max_bytes, CHANGE_BATCH) then
  return respond(1)
end
return respond(0)
