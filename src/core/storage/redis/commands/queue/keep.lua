-- keep: ARGV[7..]: the ids of the jobs a worker is running. Their leases
-- are extended from now, even one that ran out unnoticed (the worker knows
-- the job is still running), so nothing is advanced first. Replies how
-- many were kept.
writable(STAT)
local kept = 0
for i = 7, #ARGV do
  local m = member_of(ARGV[i])
  if m and number(m, 'status') == PROCESSING then
    extend(m)
    kept = kept + 1
  end
end
return respond(kept)
