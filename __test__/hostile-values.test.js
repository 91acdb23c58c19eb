'use strict'

// Values a real client throws or passes that are not what they seem:
// thrown values that are not Errors, fallbacks that must never make a
// call fail, only data cached, exact keys, worker events, unreadable
// arguments.

const test = require('node:test')
const assert = require('node:assert/strict')

const {
  executeWithFallback,
  executeService,
  skipFailedIntegration,
  AIResponseCache,
  BackgroundJobQueue,
  aiResponseCache,
  backgroundJobQueue,
  configure,
} = require('..')

let counter = 0
const unique = (name) => `${name}-${process.pid}-${++counter}`

/** Collects the process warnings with `code` emitted while `run` runs. */
async function warningsDuring(code, run) {
  const seen = []
  const listener = (warning) => {
    if (warning.code === code) seen.push(warning)
  }
  process.on('warning', listener)
  try {
    await run()
    // Warnings are emitted on a later tick.
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', listener)
  }
  return seen
}

test('a thrown object with a string message keeps it, everywhere a message is shown', async () => {
  const thrown = { message: 'upstream 502', code: 'E502' }
  const result = await executeWithFallback(async () => { throw thrown }, { operationName: unique('op') })
  assert.equal(result.message, 'upstream 502')
  assert.equal(result.error.message, 'upstream 502')
  assert.equal(result.metadata.originalError, 'upstream 502')
  const service = unique('svc')
  assert.equal(skipFailedIntegration(service, 'sync', thrown).message, `Skipped ${service} integration - Service temporarily unavailable: upstream 502`)
  const serviceResult = await executeService(async () => { throw thrown }, { operation: unique('svc-op') })
  assert.equal(serviceResult.message, 'upstream 502')
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue({ type: 'ai', operation: 'o', payload: {}, userId: 'u', maxRetries: 1 })
  const worker = queue.process(async () => { throw thrown }, { pollIntervalMs: 5 })
  while (queue.getStats().failed === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  await worker.stop()
  assert.equal(queue.getAll().find((j) => j.id === id).lastError, 'upstream 502')
})

test('an Error whose message getter throws resolves like any other failure', async () => {
  const hostile = () => {
    const error = new Error('x')
    Object.defineProperty(error, 'message', { get() { throw new Error('no message for you') } })
    return error
  }
  const result = await executeWithFallback(async () => { throw hostile() }, { operationName: unique('op') })
  assert.equal(result.success, false)
  assert.equal(typeof result.message, 'string')
  const serviceResult = await executeService(async () => { throw hostile() }, { operation: unique('svc') })
  assert.equal(serviceResult.success, false)
})

test('a payload that cannot be queued does not fail a call that succeeds', async () => {
  const circular = {}
  circular.self = circular
  for (const payload of [circular, { n: 1n }]) {
    let called = 0
    const result = await executeWithFallback(async () => { called++; return 'fine' }, {
      operationName: unique('op'),
      userId: 'u',
      queueOnFailure: { type: 'ai', payload },
    })
    assert.equal(called, 1)
    assert.equal(result.success, true)
    assert.equal(result.data, 'fine')
  }
})

test('a payload that cannot be queued makes the queue step unavailable, said once per operation', async () => {
  const circular = {}
  circular.self = circular
  const operationName = unique('op')
  const before = backgroundJobQueue.getStats().total
  const results = []
  const warnings = await warningsDuring('FALLBACK_STEP_UNAVAILABLE', async () => {
    for (let i = 0; i < 3; i++) {
      results.push(
        await executeWithFallback(async () => { throw new Error('down') }, {
          operationName,
          userId: 'u',
          queueOnFailure: { type: 'ai', payload: circular },
          allowSkip: true,
        }),
      )
    }
  })
  assert.equal(backgroundJobQueue.getStats().total, before, 'nothing was queued')
  for (const result of results) {
    assert.equal(result.success, true)
    assert.equal(result.metadata.fallbackType, 'skip')
    assert.equal(result.metadata.unavailable.length, 1)
    assert.equal(result.metadata.unavailable[0].step, 'queue')
    assert.match(result.metadata.unavailable[0].reason, /circular/)
  }
  assert.equal(warnings.length, 1, 'warned once for the operation')
  assert.match(warnings[0].message, new RegExp(operationName))
})

test('a payload over the size bound passes the request on to the next step', async () => {
  const operationName = unique('op')
  const result = await executeWithFallback(async () => { throw new Error('down') }, {
    operationName,
    userId: 'u',
    queueOnFailure: { type: 'ai', payload: 'x'.repeat(1024 * 1024 + 10) },
    defaultValue: 'safe',
  })
  assert.equal(result.data, 'safe')
  assert.equal(result.metadata.fallbackType, 'default')
  assert.equal(result.metadata.unavailable[0].step, 'queue')
})

test('only data is cached: Maps, Responses and class instances are returned, not cached (streams: streams.test.js)', async () => {
  class Answer {
    constructor() { this.text = 'hi' }
  }
  const values = [new Map([['a', 1]]), new Response('body'), new Answer()]
  for (const value of values) {
    const operationName = unique('op')
    const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
    let result
    const warnings = await warningsDuring('FALLBACK_NOT_CACHED', async () => {
      result = await executeWithFallback(async () => value, { operationName, cacheKey })
      await executeWithFallback(async () => value, { operationName, cacheKey })
    })
    assert.equal(result.data, value, 'returned as it is')
    assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null, 'not cached')
    assert.equal(warnings.length, 1, 'warned once per operation')
    const failed = await executeWithFallback(async () => { throw new Error('down') }, { operationName, cacheKey, defaultValue: 'default' })
    assert.equal(failed.metadata.fallbackType, 'default', 'the default is served, not {}')
  }
  // Data is cached: plain objects, arrays, primitives, Dates.
  for (const value of [{ a: 1 }, [1, 2], 'text', 3, new Date(0)]) {
    const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
    await executeWithFallback(async () => value, { operationName: unique('op'), cacheKey })
    assert.notEqual(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
  }
})

test('keys stay exact for lone surrogates: refused by the cache, never merged', async () => {
  const cache = new AIResponseCache()
  cache.set('x\uFFFD', 'a real replacement character', 'm')
  for (const call of [() => cache.set('x\uD800', 'r', 'm'), () => cache.get('x\uDC00', 'm'), () => cache.delete('x\uD800', 'm'), () => cache.get('p', 'm\uD800')]) {
    assert.throws(call, (error) => error instanceof TypeError && error.code === 'ERR_INVALID_ARG_VALUE' && /lone surrogate/.test(error.message))
  }
  assert.equal(cache.get('x\uFFFD', 'm').response, 'a real replacement character')
  // Through executeWithFallback: not cached, and the cache step is unavailable, never another key's answer.
  aiResponseCache.set('y\uFFFD', 'not yours', 'm')
  const prompt = 'y\uD800'
  const ok = await executeWithFallback(async () => 'answer', { operationName: unique('op'), cacheKey: { prompt, modelId: 'm' } })
  assert.equal(ok.data, 'answer')
  const failed = await executeWithFallback(async () => { throw new Error('down') }, { operationName: unique('op'), cacheKey: { prompt, modelId: 'm' }, defaultValue: 'safe' })
  assert.equal(failed.data, 'safe')
  assert.equal(failed.metadata.unavailable[0].step, 'cache')
})

test('worker events follow what was recorded; a throwing or rejecting callback is reported, never lost', async () => {
  const queue = new BackgroundJobQueue()
  const completedThenThrew = queue.enqueue({ type: 'ai', operation: 'a', payload: 1, userId: 'u', maxRetries: 1 })
  const failedThenReturned = queue.enqueue({ type: 'integration', operation: 'b', payload: 2, userId: 'u', maxRetries: 1 })
  const events = []
  const warnings = await warningsDuring('FALLBACK_WORKER_CALLBACK_FAILED', async () => {
    const worker = queue.process(
      {
        ai: (job) => {
          queue.complete(job.id)
          throw new Error('after completing')
        },
        integration: (job) => {
          queue.fail(job.id, 'failed by the handler')
        },
      },
      {
        pollIntervalMs: 5,
        concurrency: 2,
        onCompleted: (job) => {
          events.push(['completed', job.id, job.status])
          throw new Error('onCompleted threw')
        },
        onFailed: (job, error) => events.push(['failed', job.id, job.status, error.message]),
        onDeadLetter: async () => {
          throw new Error('onDeadLetter rejected')
        },
      },
    )
    while (events.length < 2) await new Promise((resolve) => setTimeout(resolve, 5))
    await worker.stop()
    await new Promise((resolve) => setTimeout(resolve, 20))
  })
  assert.deepEqual(
    events.sort((a, b) => a[1].localeCompare(b[1])),
    [
      ['completed', completedThenThrew, 'completed'],
      ['failed', failedThenReturned, 'failed', 'failed by the handler'],
    ].sort((a, b) => a[1].localeCompare(b[1])),
  )
  const messages = warnings.map((warning) => warning.message).sort()
  assert.equal(messages.length, 2)
  assert.match(messages[0], /onCompleted callback failed: onCompleted threw/)
  assert.match(messages[1], /onDeadLetter callback failed: onDeadLetter rejected/)
})

test('a revoked Proxy as an argument is a coded TypeError everywhere', async () => {
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  const sync = [
    () => configure(proxy),
    () => new AIResponseCache(proxy),
    () => new BackgroundJobQueue(proxy),
    () => backgroundJobQueue.enqueue(proxy),
    () => new BackgroundJobQueue().process(async () => {}, proxy),
  ]
  for (const call of sync) {
    assert.throws(call, (error) => error instanceof TypeError && error.code === 'ERR_INVALID_ARG_VALUE')
  }
  const rejecting = [
    () => executeWithFallback(async () => 1, proxy),
    () => executeWithFallback(async () => 1, { operationName: 'x', cacheKey: proxy }),
    () => executeService(async () => 1, proxy),
    () => executeService(async () => 1, { operation: 'x' }, proxy),
  ]
  for (const call of rejecting) {
    await assert.rejects(call(), (error) => error instanceof TypeError && error.code === 'ERR_INVALID_ARG_VALUE')
  }
})

test('an argument whose reading throws a TypeError is a coded bad argument; other errors pass as thrown', async () => {
  const throwing = (error) => ({
    get operationName() {
      throw error
    },
  })
  const job = (error) => ({ type: 'ai', userId: 'u', payload: 1, get operation() { throw error } })
  // Read in JavaScript (executeWithFallback) and in native code (enqueue, configure).
  const typeError = new TypeError('unreadable')
  await assert.rejects(executeWithFallback(async () => 1, throwing(typeError)), (error) => error === typeError && error.code === 'ERR_INVALID_ARG_VALUE')
  const nativeTypeError = new TypeError('unreadable operation')
  assert.throws(() => backgroundJobQueue.enqueue(job(nativeTypeError)), (error) => error === nativeTypeError && error.code === 'ERR_INVALID_ARG_VALUE')
  const rangeError = new RangeError('not a TypeError')
  await assert.rejects(executeWithFallback(async () => 1, throwing(rangeError)), (error) => error === rangeError && error.code === undefined)
  const own = new Error('mine')
  assert.throws(() => backgroundJobQueue.enqueue(job(own)), (error) => error === own && error.code === undefined)
})

test('identifiers are bounded (a coded RangeError), descriptive texts are cut', async () => {
  const { IntegrationFailureManager, queueForLater } = require('..')
  const huge = 'x'.repeat(4097)
  const queue = new BackgroundJobQueue()
  const before = queue.getStats().total
  for (const job of [
    { type: 'ai', operation: huge, payload: {}, userId: 'u' },
    { type: 'ai', operation: 'o', payload: {}, userId: huge },
  ]) {
    assert.throws(() => queue.enqueue(job), (error) => error instanceof RangeError && error.code === 'ERR_OUT_OF_RANGE' && /4097 bytes/.test(error.message))
  }
  assert.equal(queue.getStats().total, before, 'nothing half-stored')
  assert.throws(() => queueForLater('ai', huge, {}, 'u'), RangeError)
  const failures = new IntegrationFailureManager()
  assert.throws(() => failures.recordFailure(huge, 'op', 'e', 'r'), (error) => error instanceof RangeError && error.code === 'ERR_OUT_OF_RANGE' && /"service"/.test(error.message))
  assert.throws(() => skipFailedIntegration('svc', huge, new Error('e')), RangeError)
  assert.throws(() => new AIResponseCache().set('p', 'r', huge), (error) => error instanceof RangeError && /"modelId"/.test(error.message))
  await assert.rejects(executeService(async () => 1, { operation: huge }), RangeError)
  // A 4096-byte identifier is kept whole.
  const id = queue.enqueue({ type: 'ai', operation: 'o'.repeat(4096), payload: {}, userId: 'u' })
  assert.equal(queue.getAll().find((j) => j.id === id).operation.length, 4096)
  // Descriptive texts: kept up to 8 KiB, then cut and marked.
  const longError = 'e'.repeat(1_000_000)
  failures.recordFailure('svc', 'op', longError, longError)
  const [record] = failures.getFailures('svc')
  assert.ok(record.error.length < 9000 && record.error.endsWith('… (cut)'))
  assert.ok(record.skipReason.length < 9000)
  queue.dequeue()
  queue.fail(id, longError)
  assert.ok(queue.getAll().find((j) => j.id === id).lastError.length < 9000)
  // executeWithFallback: a model id too long makes the cache step unavailable, the call still succeeds.
  const ok = await executeWithFallback(async () => 'fine', { operationName: unique('op'), cacheKey: { prompt: 'p', modelId: huge } })
  assert.equal(ok.data, 'fine')
  const failed = await executeWithFallback(async () => { throw new Error('down') }, { operationName: unique('op'), cacheKey: { prompt: 'p', modelId: huge }, userId: huge, queueOnFailure: { type: 'ai', payload: {} }, defaultValue: 'safe' })
  assert.equal(failed.data, 'safe')
  assert.equal(failed.metadata.unavailable[0].step, 'cache')
})
