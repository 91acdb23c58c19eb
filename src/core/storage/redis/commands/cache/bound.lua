-- bound: replies the stored {maxEntries, maxBytes} (nil where none is set).
return redis.call('HMGET', BOUND, 'maxEntries', 'maxBytes')
