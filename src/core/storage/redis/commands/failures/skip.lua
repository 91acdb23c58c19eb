-- skip: ARGV[4]: service, ARGV[5]: the window's start. Replies how many of
-- the service's failures are at or after it.
guard_services({ARGV[4]})
return redis.call('ZCOUNT', times_key(ARGV[4]), ARGV[5], '+inf')
