'use strict'

// executeWithFallback (API.md §2): each fallback path with its exact message,
// precedence when several options are given, odd throws, uncacheable results,
// bad arguments, and many calls in flight.

const test = require('node:test')
const assert = require('node:assert/strict')

const {
  executeWithFallback,
  aiResponseCache,
  backgroundJobQueue,
  integrationFailureManager,
  configure,
} = require('..')
const { MESSAGES, resetSingletons, isRecentDate } = require('./helpers')

const fail = (error) => async () => {
  throw error
}
const ok = (value) => async () => value

test.beforeEach(resetSingletons)

test('success resolves the value with the success message and a Date timestamp', async () => {
  const result = await executeWithFallback(ok({ title: 'T' }), { operationName: 'op' })
  assert.equal(result.success, true)
  assert.deepEqual(result.data, { title: 'T' })
  assert.equal(result.message, 'Operation completed successfully')
  assert.ok(isRecentDate(result.timestamp))
  assert.deepEqual(Object.keys(result).sort(), ['data', 'message', 'success', 'timestamp'])
})

test('the resolved data is the very value the operation returned', async () => {
  const value = { nested: [1, 2] }
  const result = await executeWithFallback(ok(value), { operationName: 'op' })
  assert.equal(result.data, value)
})

test('success with a cacheKey stores the result under (prompt, modelId)', async () => {
  const key = { prompt: 'write a post', modelId: 'claude' }
  await executeWithFallback(ok({ title: 'Cached', when: new Date(0) }), { operationName: 'op', cacheKey: key })
  const cached = aiResponseCache.get('write a post', 'claude')
  assert.deepEqual(cached.response, { title: 'Cached', when: '1970-01-01T00:00:00.000Z' })
  assert.equal(cached.prompt, 'write a post')
  assert.equal(cached.modelId, 'claude')
  assert.equal(cached.expiresAt.getTime() - cached.timestamp.getTime(), 24 * 60 * 60 * 1000)
})

test('null and undefined results are not cached', async () => {
  for (const value of [null, undefined]) {
    await executeWithFallback(ok(value), { operationName: 'op', cacheKey: { prompt: 'p', modelId: 'm' } })
  }
  assert.equal(aiResponseCache.get('p', 'm'), null)
})

test('falsy results other than null/undefined are cached', async () => {
  const cases = [['zero', 0], ['empty', ''], ['false', false]]
  for (const [prompt, value] of cases) {
    await executeWithFallback(ok(value), { operationName: 'op', cacheKey: { prompt, modelId: 'm' } })
    assert.equal(aiResponseCache.get(prompt, 'm').response, value)
  }
})

test('a result JSON cannot hold is still a success, just not cached', async () => {
  const circular = { a: 1 }
  circular.self = circular
  const cases = [circular, { n: 10n }, () => 1]
  for (const value of cases) {
    const result = await executeWithFallback(ok(value), { operationName: 'op', cacheKey: { prompt: 'u', modelId: 'm' } })
    assert.equal(result.success, true)
    assert.equal(result.data, value)
    assert.equal(aiResponseCache.get('u', 'm'), null)
  }
})

test('a result larger than the cache byte bound is returned, not cached, and evicts nothing', async () => {
  configure({ cache: { maxBytes: 64 } })
  try {
    aiResponseCache.set('keep', 1, 'm')
    const big = 'x'.repeat(100)
    const result = await executeWithFallback(ok(big), { operationName: 'op', cacheKey: { prompt: 'big', modelId: 'm' } })
    assert.equal(result.data, big)
    assert.equal(aiResponseCache.get('big', 'm'), null)
    assert.equal(aiResponseCache.get('keep', 'm').response, 1)
  } finally {
    configure({ cache: { maxBytes: 256 * 1024 * 1024 } })
  }
})

test('failure with a cached answer serves it (cache fallback)', async () => {
  aiResponseCache.set('p', { title: 'old' }, 'm')
  const result = await executeWithFallback(fail(new Error('model down')), {
    operationName: 'gen',
    cacheKey: { prompt: 'p', modelId: 'm' },
    defaultValue: { title: 'default' },
  })
  assert.deepEqual(result, {
    success: true,
    data: { title: 'old' },
    message: MESSAGES.cache,
    timestamp: result.timestamp,
    metadata: { usedFallback: true, fallbackType: 'cache', errorClass: 'other' },
  })
})

test('the cached answer handed out is a copy', async () => {
  aiResponseCache.set('p', { list: [1] }, 'm')
  const options = { operationName: 'gen', cacheKey: { prompt: 'p', modelId: 'm' } }
  const first = await executeWithFallback(fail(new Error('x')), options)
  first.data.list.push(2)
  const second = await executeWithFallback(fail(new Error('x')), options)
  assert.deepEqual(second.data, { list: [1] })
})

test('failure with a cacheKey, no entry and a default serves the default', async () => {
  const fallback = { title: 'Blog Post' }
  const result = await executeWithFallback(fail(new Error('down')), {
    operationName: 'gen',
    cacheKey: { prompt: 'none', modelId: 'm' },
    defaultValue: fallback,
    allowSkip: true,
  })
  assert.equal(result.success, true)
  assert.equal(result.data, fallback)
  assert.equal(result.message, MESSAGES.default)
  assert.deepEqual(result.metadata, { usedFallback: true, fallbackType: 'default', errorClass: 'other' })
  assert.deepEqual(integrationFailureManager.getStats(), {}, 'skip did not run')
})

test('failure with queueOnFailure and userId queues a job', async () => {
  const before = backgroundJobQueue.getStats().pending
  const result = await executeWithFallback(fail(new Error('analytics down')), {
    operationName: 'process_analytics',
    userId: 'user-1',
    queueOnFailure: { type: 'analytics', payload: { contentId: 'c1' }, priority: 'low' },
    allowSkip: true,
  })
  assert.equal(result.success, true)
  assert.ok('data' in result)
  assert.equal(result.data, undefined)
  assert.equal(result.message, MESSAGES.queue)
  assert.equal(result.metadata.usedFallback, true)
  assert.equal(result.metadata.fallbackType, 'queue')
  assert.match(result.metadata.jobId, /^job_\d+_[0-9a-z]{9}$/)
  const [job] = backgroundJobQueue.getAll().filter((j) => j.id === result.metadata.jobId)
  assert.equal(job.type, 'analytics')
  assert.equal(job.operation, 'process_analytics')
  assert.deepEqual(job.payload, { contentId: 'c1' })
  assert.equal(job.userId, 'user-1')
  assert.equal(job.priority, 'low')
  assert.equal(job.retryCount, 0)
  assert.equal(job.maxRetries, 3)
  assert.equal(job.status, 'pending')
  assert.equal(backgroundJobQueue.getStats().pending, before + 1)
  assert.deepEqual(integrationFailureManager.getStats(), {}, 'skip did not run')
})

test('queued priority defaults to medium', async () => {
  const result = await executeWithFallback(fail(new Error('x')), {
    operationName: 'op',
    userId: 'u',
    queueOnFailure: { type: 'ai', payload: {} },
  })
  const job = backgroundJobQueue.getAll().find((j) => j.id === result.metadata.jobId)
  assert.equal(job.priority, 'medium')
})

test('the queued payload is the payload as it was when the call was made', async () => {
  const payload = { n: 1 }
  let release
  const pending = executeWithFallback(
    () => new Promise((resolve, reject) => { release = () => reject(new Error('late')) }),
    { operationName: 'op', userId: 'u', queueOnFailure: { type: 'ai', payload } },
  )
  payload.n = 2
  release()
  const result = await pending
  const job = backgroundJobQueue.getAll().find((j) => j.id === result.metadata.jobId)
  assert.deepEqual(job.payload, { n: 1 })
})

test('queueOnFailure without userId does not queue', async () => {
  const before = backgroundJobQueue.getStats().total
  const result = await executeWithFallback(fail(new Error('x')), {
    operationName: 'op',
    queueOnFailure: { type: 'ai', payload: {} },
    allowSkip: true,
  })
  assert.equal(result.metadata.fallbackType, 'skip')
  assert.equal(backgroundJobQueue.getStats().total, before)
})

test('a full queue passes the request on to skip instead of losing it', async () => {
  configure({ queue: { maxSize: backgroundJobQueue.getStats().total + 1 } })
  try {
    backgroundJobQueue.enqueue({ type: 'ai', operation: 'fill', payload: 1, userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3 })
    const result = await executeWithFallback(fail(new Error('still down')), {
      operationName: 'publish',
      userId: 'u',
      queueOnFailure: { type: 'integration', payload: {} },
      allowSkip: true,
    })
    assert.equal(result.metadata.fallbackType, 'skip')
    assert.equal(integrationFailureManager.getFailures('publish').length, 1)
    const failed = await executeWithFallback(fail(new Error('still down')), {
      operationName: 'publish',
      userId: 'u',
      queueOnFailure: { type: 'integration', payload: {} },
    })
    assert.equal(failed.success, false)
  } finally {
    configure({ queue: { maxSize: 10000 } })
  }
})

test('allowSkip records the failure under operationName, or service when given', async () => {
  const result = await executeWithFallback(fail(new Error('fb 500')), { operationName: 'facebook_sync', allowSkip: true })
  assert.equal(result.success, true)
  assert.equal(result.data, undefined)
  assert.ok('data' in result)
  assert.equal(result.message, MESSAGES.skip)
  assert.deepEqual(result.metadata, { usedFallback: true, fallbackType: 'skip', errorClass: 'other' })
  const [failure] = integrationFailureManager.getFailures('facebook_sync')
  assert.equal(failure.service, 'facebook_sync')
  assert.equal(failure.operation, 'execute')
  assert.equal(failure.error, 'fb 500')
  assert.equal(failure.skipReason, 'Service temporarily unavailable: fb 500')
  assert.ok(isRecentDate(failure.timestamp))

  await executeWithFallback(fail(new Error('x')), { operationName: 'publish_fb', service: 'facebook', allowSkip: true })
  assert.equal(integrationFailureManager.getFailures('facebook').length, 1)
  assert.equal(integrationFailureManager.getFailures('publish_fb').length, 0)
})

test('three skipped failures make shouldSkipService true', async () => {
  for (let i = 0; i < 3; i++) {
    assert.equal(integrationFailureManager.shouldSkipService('facebook'), false)
    await executeWithFallback(fail(new Error('x')), { operationName: 'post', service: 'facebook', allowSkip: true })
  }
  assert.equal(integrationFailureManager.shouldSkipService('facebook', 3), true)
})

test('a default without a cacheKey is used after skip does not apply (fixed)', async () => {
  const result = await executeWithFallback(fail(new Error('x')), { operationName: 'op', defaultValue: [] })
  assert.equal(result.success, true)
  assert.deepEqual(result.data, [])
  assert.equal(result.message, MESSAGES.default)
  assert.deepEqual(result.metadata, { usedFallback: true, fallbackType: 'default', errorClass: 'other' })
})

test('skip comes before a default without a cacheKey', async () => {
  const result = await executeWithFallback(fail(new Error('x')), { operationName: 'op', defaultValue: 1, allowSkip: true })
  assert.equal(result.metadata.fallbackType, 'skip')
  assert.equal(result.data, undefined)
})

test('a falsy default still counts; only undefined means none', async () => {
  for (const value of [0, '', false, null]) {
    const result = await executeWithFallback(fail(new Error('x')), { operationName: 'op', defaultValue: value })
    assert.equal(result.data, value)
    assert.equal(result.metadata.fallbackType, 'default')
  }
  const none = await executeWithFallback(fail(new Error('x')), { operationName: 'op', defaultValue: undefined })
  assert.equal(none.success, false)
})

test('nothing applies: resolves success false with the error', async () => {
  const error = new Error('boom')
  const result = await executeWithFallback(fail(error), { operationName: 'op' })
  assert.deepEqual(result, {
    success: false,
    error,
    message: 'boom',
    timestamp: result.timestamp,
    metadata: { usedFallback: false, originalError: 'boom', errorClass: 'other' },
  })
  assert.equal(result.error, error)
})

test('odd throws: strings, numbers, objects, undefined, null, symbols', async () => {
  const cases = [
    ['x', 'x'],
    [42, '42'],
    [undefined, 'undefined'],
    [null, 'null'],
    [{ message: 'not an Error' }, 'not an Error'],
    [{ code: 'E_NO_MESSAGE' }, 'non-error value thrown (object)'],
    [Symbol('s'), 'Symbol(s)'],
  ]
  for (const [thrown, message] of cases) {
    const result = await executeWithFallback(fail(thrown), { operationName: 'op' })
    assert.equal(result.success, false)
    assert.equal(result.message, message)
    assert.ok(result.error instanceof Error, `${message} becomes an Error`)
    assert.equal(result.error.message, message)
    assert.equal(result.metadata.originalError, message)
  }
})

test('Error subclasses keep their identity and message', async () => {
  const error = new TypeError('bad type')
  const result = await executeWithFallback(fail(error), { operationName: 'op' })
  assert.equal(result.error, error)
  assert.equal(result.message, 'bad type')
})

test('a synchronous throw counts as a failure', async () => {
  aiResponseCache.set('p', 'cached', 'm')
  const result = await executeWithFallback(() => { throw new Error('sync') }, {
    operationName: 'op',
    cacheKey: { prompt: 'p', modelId: 'm' },
  })
  assert.equal(result.data, 'cached')
  assert.equal(result.metadata.fallbackType, 'cache')
})

test('a plain (non-promise) return value counts as a success', async () => {
  const result = await executeWithFallback(() => 7, { operationName: 'op', cacheKey: { prompt: 'plain', modelId: 'm' } })
  assert.equal(result.success, true)
  assert.equal(result.data, 7)
  assert.equal(aiResponseCache.get('plain', 'm').response, 7)
})

test('thenables are awaited like promises', async () => {
  const good = await executeWithFallback(() => ({ then: (resolve) => resolve('yes') }), { operationName: 'op' })
  assert.equal(good.data, 'yes')
  const bad = await executeWithFallback(() => ({ then: (_, reject) => reject(new Error('no')) }), { operationName: 'op' })
  assert.equal(bad.success, false)
  assert.equal(bad.message, 'no')
})

test('a promise rejected later, after other work, still falls back', async () => {
  const result = await executeWithFallback(
    () => new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 20)),
    { operationName: 'op', defaultValue: 'd' },
  )
  assert.equal(result.data, 'd')
})

test('precedence with every option given: cache, default, queue, skip', async () => {
  const options = {
    operationName: 'all',
    userId: 'u',
    cacheKey: { prompt: 'all', modelId: 'm' },
    defaultValue: 'default',
    queueOnFailure: { type: 'ai', payload: {} },
    allowSkip: true,
  }
  aiResponseCache.set('all', 'cached', 'm')
  assert.equal((await executeWithFallback(fail(new Error('x')), options)).metadata.fallbackType, 'cache')
  aiResponseCache.clear()
  assert.equal((await executeWithFallback(fail(new Error('x')), options)).metadata.fallbackType, 'default')
  delete options.defaultValue
  assert.equal((await executeWithFallback(fail(new Error('x')), options)).metadata.fallbackType, 'queue')
  delete options.userId
  assert.equal((await executeWithFallback(fail(new Error('x')), options)).metadata.fallbackType, 'skip')
  delete options.allowSkip
  assert.equal((await executeWithFallback(fail(new Error('x')), options)).success, false)
})

test('the failure path counts its cache lookup as a hit or a miss', async () => {
  const key = { prompt: 'counted', modelId: 'm' }
  await executeWithFallback(fail(new Error('x')), { operationName: 'op', cacheKey: key })
  aiResponseCache.set('counted', 1, 'm')
  await executeWithFallback(fail(new Error('x')), { operationName: 'op', cacheKey: key })
  const stats = aiResponseCache.getStats()
  assert.equal(stats.misses, 1)
  assert.equal(stats.hits, 1)
})

test('stale-if-error: an expired answer serves the failure path, marked stale', async () => {
  configure({ cache: { staleIfErrorMs: 60_000 } })
  try {
    aiResponseCache.set('stale', { v: 1 }, 'm', 1)
    await new Promise((resolve) => setTimeout(resolve, 15))
    assert.equal(aiResponseCache.get('stale', 'm'), null)
    const result = await executeWithFallback(fail(new Error('x')), {
      operationName: 'op',
      cacheKey: { prompt: 'stale', modelId: 'm' },
    })
    assert.deepEqual(result.data, { v: 1 })
    assert.deepEqual(result.metadata, { usedFallback: true, fallbackType: 'cache', stale: true, errorClass: 'other' })
  } finally {
    configure({ cache: { staleIfErrorMs: 0 } })
  }
})

test('bad arguments reject with a TypeError naming the argument, without calling the operation', async () => {
  let called = 0
  const op = async () => { called++ }
  const cases = [
    [[undefined, { operationName: 'x' }], /"operation" argument must be of type function/, 'ERR_INVALID_ARG_TYPE'],
    [['not a function', { operationName: 'x' }], /"operation" argument/, 'ERR_INVALID_ARG_TYPE'],
    [[op], /"options" argument must be of type object. Received undefined/, 'ERR_INVALID_ARG_TYPE'],
    [[op, null], /"options" argument/, 'ERR_INVALID_ARG_TYPE'],
    [[op, {}], /"options.operationName" property must be of type string/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: '' }], /"options.operationName" property must be a non-empty string/, 'ERR_INVALID_ARG_VALUE'],
    [[op, { operationName: 5 }], /"options.operationName"/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', queueOnFailure: { type: 'email', payload: {} } }], /"options.queueOnFailure.type" property must be one of 'ai', 'integration', 'analytics', 'notification'/, 'ERR_INVALID_ARG_VALUE'],
    [[op, { operationName: 'x', queueOnFailure: { type: 'ai', payload: {}, priority: 'urgent' } }], /"options.queueOnFailure.priority" property must be one of 'low', 'medium', 'high'/, 'ERR_INVALID_ARG_VALUE'],
    [[op, { operationName: 'x', cacheKey: { prompt: 'p' } }], /"options.cacheKey.modelId" property must be of type string/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', cacheKey: 'key' }], /"options.cacheKey" property must be of type object/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', allowSkip: 'yes' }], /"options.allowSkip" property must be of type boolean/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', userId: 7 }], /"options.userId" property must be of type string/, 'ERR_INVALID_ARG_TYPE'],
    // Plain calls are checked in JavaScript first (lib/plain-call.js): none of these may pass there.
    [[op, Object.assign([], { operationName: 'x' })], /"options" argument must be of type object/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', cacheKey: [] }], /"options.cacheKey" property must be of type object/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', cacheKey: null }], /"options.cacheKey" property must be of type object/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', allowSkip: null }], /"options.allowSkip" property must be of type boolean/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', service: 1 }], /"options.service" property must be of type string/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', dedupe: 1 }], /"options.dedupe" property must be of type boolean/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: 'x', userId: null }], /"options.userId" property must be of type string/, 'ERR_INVALID_ARG_TYPE'],
    [[op, { operationName: new String('x') }], /"options.operationName" property must be of type string/, 'ERR_INVALID_ARG_TYPE'],
  ]
  for (const [args, message, code] of cases) {
    const promise = executeWithFallback(...args)
    assert.ok(promise instanceof Promise, 'returns a promise even for bad arguments')
    await assert.rejects(promise, (error) => {
      assert.ok(error instanceof TypeError, `${error} is a TypeError`)
      assert.match(error.message, message)
      assert.equal(error.code, code)
      return true
    })
  }
  assert.equal(called, 0)
})

test('2,000 concurrent calls each settle with their own outcome', async () => {
  const calls = []
  for (let i = 0; i < 2000; i++) {
    const mode = i % 4
    const operation = async () => {
      await new Promise((resolve) => setImmediate(resolve))
      if (mode === 0) return { i }
      throw new Error(`e${i}`)
    }
    const options = { operationName: `op${i}` }
    if (mode === 1) options.defaultValue = { d: i }
    if (mode === 2) options.allowSkip = true
    calls.push(executeWithFallback(operation, options).then((result) => [i, mode, result]))
  }
  const results = await Promise.all(calls)
  for (const [i, mode, result] of results) {
    if (mode === 0) assert.deepEqual(result.data, { i })
    if (mode === 1) assert.deepEqual(result.data, { d: i })
    if (mode === 2) assert.equal(result.metadata.fallbackType, 'skip')
    if (mode === 3) assert.equal(result.message, `e${i}`)
  }
  assert.equal(Object.keys(integrationFailureManager.getStats()).length, 500)
})
