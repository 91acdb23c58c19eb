-- damaged: ARGV[7]: the member of a job the library read but cannot use
-- (its payload is not JSON): set aside as damaged:<m>, out of every index,
-- counted with the jobs found gone, so the next job is served. Replies 1.
writable(STAT)
set_aside(ARGV[7])
return respond(1)
