-- set_bound: ARGV[4..6]: the new maxPerService, maxServices and maxBytes,
-- for every instance, stored once the first step of applying them to what
-- is held has passed its checks (a key of another kind among the services
-- it touches refuses the whole command); `fit` goes on with the rest.
-- Replies {1 when more is left to do, the rank to go on from}.
max_per_service, max_services, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
return fit_step(0, function()
  redis.call('HSET', BOUND, 'maxPerService', ARGV[4], 'maxServices', ARGV[5], 'maxBytes', ARGV[6])
end)
