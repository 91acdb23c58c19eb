-- bound: replies the stored {maxSize, maxBytes} (nil where none is set).
return respond(redis.call('HMGET', BOUND, 'maxSize', 'maxBytes'))
