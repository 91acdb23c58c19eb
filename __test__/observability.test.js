'use strict'

// Events and metrics (README, "Observability"): what each diagnostics_channel
// channel publishes, the caller's async context in retried attempts, and the
// OpenTelemetry bridge (span events and metrics, on the SDK's in-memory
// exporters). The OpenTelemetry test registers global providers: it runs last.

const test = require('node:test')
const assert = require('node:assert/strict')
const { AsyncLocalStorage } = require('node:async_hooks')
const { execFile } = require('node:child_process')
const path = require('node:path')

const { executeWithFallback, executeService, aiResponseCache, backgroundJobQueue, BackgroundJobQueue } = require('..')
const { resetSingletons, flaky, published: publishedOn } = require('./helpers')

const CHANNELS = ['fallback', 'alternative', 'retry', 'breaker', 'job']

/** Every message on the channels while `run` runs, each checked for the fields every message has. */
function published(channels, run) {
  return publishedOn(channels, run, (message) => {
    assert.equal(typeof message.type, 'string')
    assert.equal(typeof message.operationName, 'string')
    assert.ok('error' in message, 'every message has an error field')
    assert.ok(message.error === undefined || typeof message.error === 'string')
  })
}

/** A message without its undefined fields, to compare. */
function defined(message) {
  return Object.fromEntries(Object.entries(message).filter(([, value]) => value !== undefined))
}

const fail = (message) => async () => {
  throw new Error(message)
}

let names = 0
/** A fresh operation name: breakers and skip counts are per name. */
const fresh = (base) => `${base}-${process.pid}-${++names}`

test.beforeEach(resetSingletons)

test('fallback: cache, default, queue and skip, each with the operation and the error', async () => {
  const key = { prompt: 'obs prompt', modelId: 'obs-model' }
  await executeWithFallback(async () => 'answer', { operationName: 'write', cacheKey: key })
  const seen = await published(['fallback'], async () => {
    await executeWithFallback(fail('model down'), { operationName: 'write', cacheKey: key })
    await executeWithFallback(fail('no luck'), { operationName: 'title', defaultValue: 'Untitled' })
    await executeWithFallback(fail('api 503'), { operationName: 'summarise', userId: 'u1', queueOnFailure: { type: 'ai', payload: { n: 1 } } })
    await executeWithFallback(fail('fb 500'), { operationName: 'fb_sync', allowSkip: true })
  })
  const [, , [, queued]] = seen
  assert.equal(typeof queued.jobId, 'string')
  assert.ok(backgroundJobQueue.getAll().some((job) => job.id === queued.jobId), 'the queued job\'s id')
  assert.deepEqual(
    seen.map(([channel, message]) => [channel, defined(message)]),
    [
      ['fallback', { type: 'cache', operationName: 'write', error: 'model down', errorClass: 'other' }],
      ['fallback', { type: 'default', operationName: 'title', error: 'no luck', errorClass: 'other' }],
      ['fallback', { type: 'queue', operationName: 'summarise', error: 'api 503', jobId: queued.jobId, errorClass: 'other' }],
      ['fallback', { type: 'skip', operationName: 'fb_sync', error: 'fb 500', errorClass: 'other' }],
    ],
  )
})

test('fallback: a skip without calling has skippedWithoutCalling and no error', async () => {
  const service = fresh('facebook')
  const options = { operationName: 'post', service, allowSkip: true, skipThreshold: 2 }
  for (let i = 0; i < 2; i++) await executeWithFallback(fail('fb 500'), options)
  let called = false
  const seen = await published(['fallback'], async () => {
    const result = await executeWithFallback(async () => { called = true }, options)
    assert.equal(result.metadata.skippedWithoutCalling, true)
  })
  assert.equal(called, false)
  assert.deepEqual(seen.map(([, message]) => defined(message)), [{ type: 'skip', operationName: 'post', skippedWithoutCalling: true }])
})

test('retry: one message per attempt after the first, with the previous attempt\'s error', async () => {
  const seen = await published(['retry'], async () => {
    const op = flaky(2)
    const result = await executeWithFallback(op.operation, { operationName: 'generate', retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 5 } })
    assert.equal(result.success, true)
    const service = await executeService(flaky(1).operation, { operation: 'crm', timestamp: new Date() }, { maxRetries: 2, baseDelay: 1 })
    assert.equal(service.success, true)
  })
  assert.deepEqual(
    seen.map(([, message]) => defined(message)),
    [
      { type: 'retry', operationName: 'generate', attempt: 2, error: 'attempt 1 failed' },
      { type: 'retry', operationName: 'generate', attempt: 3, error: 'attempt 2 failed' },
      { type: 'retry', operationName: 'crm', attempt: 2, error: 'attempt 1 failed' },
    ],
  )
})

test('a message that cannot read its error says so, and the call goes on', async () => {
  const hostile = () => {
    const error = new Error('x')
    Object.defineProperty(error, 'message', { get() { throw new Error('no message for you') } })
    return error
  }
  const seen = await published(['retry'], async () => {
    const result = await executeService(async () => { throw hostile() }, { operation: fresh('hostile'), timestamp: new Date() }, { maxRetries: 1, baseDelay: 1 })
    assert.equal(result.success, false)
  })
  assert.deepEqual(seen.map(([, message]) => message.error), ['an error whose message could not be read'])
})

test('the caller\'s AsyncLocalStorage store is seen by every attempt, the retried ones too', async () => {
  const storage = new AsyncLocalStorage()
  const stores = []
  const operation = async () => {
    stores.push(storage.getStore())
    if (stores.length % 3 !== 0) throw new Error(`attempt ${stores.length} failed`)
    return 'ok'
  }
  const result = await storage.run({ request: 'r1' }, () =>
    executeWithFallback(operation, { operationName: 'als', retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2 } }),
  )
  assert.equal(result.success, true)
  const service = await storage.run({ request: 'r2' }, () =>
    executeService(operation, { operation: fresh('als'), timestamp: new Date() }, { maxRetries: 2, baseDelay: 1, maxDelay: 2 }),
  )
  assert.equal(service.success, true)
  assert.deepEqual(stores, [{ request: 'r1' }, { request: 'r1' }, { request: 'r1' }, { request: 'r2' }, { request: 'r2' }, { request: 'r2' }])
})

test('breaker: open after the threshold, half-open for the trial, closed by its success; open again by a failed trial', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
  const operation = fresh('payments')
  const context = { operation, timestamp: new Date() }
  const settings = { maxRetries: 0, breakerThreshold: 2, breakerResetMs: 1_000, fallback: () => 'later' }
  const seen = await published(['breaker'], async () => {
    await executeService(fail('503'), context, settings)
    await executeService(fail('503 again'), context, settings)
    await executeService(fail('kept out'), context, settings)
    t.mock.timers.tick(1_000)
    await executeService(fail('still down'), context, settings)
    t.mock.timers.tick(1_000)
    await executeService(async () => 'back', context, settings)
  })
  const breaker = (state, previousState, failureCount, error) => ({ type: 'breaker', operationName: operation, state, previousState, failureCount, error })
  assert.deepEqual(
    seen.map(([, message]) => message),
    [
      breaker('open', 'closed', 2, '503 again'),
      breaker('half-open', 'open', 2, undefined),
      breaker('open', 'half-open', 3, 'still down'),
      breaker('half-open', 'open', 3, undefined),
      breaker('closed', 'half-open', 0, undefined),
    ],
  )
})

test('job: completed, failed, and failed then dead-lettered, as the callbacks see them', async () => {
  const queue = new BackgroundJobQueue()
  const job = (overrides) => ({ type: 'ai', operation: 'op', payload: {}, userId: 'u', priority: 'medium', retryCount: 0, ...overrides })
  const done = queue.enqueue(job({ type: 'analytics', operation: 'track', maxRetries: 3 }))
  const retried = queue.enqueue(job({ operation: 'summarise', maxRetries: 3 }))
  const dead = queue.enqueue(job({ operation: 'translate', maxRetries: 1 }))
  const callbacks = []
  const seen = await published(['job'], () =>
    queue.drain(
      { analytics: async () => {}, ai: () => { throw new Error('handler broke') } },
      {
        onCompleted: (j) => callbacks.push(['completed', j.id]),
        onFailed: (j) => callbacks.push(['failed', j.id]),
        onDeadLetter: (j) => callbacks.push(['dead-lettered', j.id]),
      },
    ),
  )
  assert.deepEqual(seen.map(([, m]) => [m.type, m.jobId]), callbacks, 'one message per callback, in the same order')
  const byJob = (id) => seen.filter(([, m]) => m.jobId === id).map(([, m]) => defined(m))
  assert.deepEqual(byJob(done), [{ type: 'completed', operationName: 'track', jobId: done, jobType: 'analytics', retryCount: 0 }])
  assert.deepEqual(byJob(retried), [{ type: 'failed', operationName: 'summarise', jobId: retried, jobType: 'ai', retryCount: 1, error: 'handler broke' }])
  assert.deepEqual(byJob(dead), [
    { type: 'failed', operationName: 'translate', jobId: dead, jobType: 'ai', retryCount: 1, error: 'handler broke' },
    { type: 'dead-lettered', operationName: 'translate', jobId: dead, jobType: 'ai', retryCount: 1, error: 'handler broke' },
  ])
})

test('without @opentelemetry/api (FALLBACK_MECHANISMS_OTEL=0) nothing subscribes, and calls work', async () => {
  const source = `
    const dc = require('node:diagnostics_channel')
    const { executeWithFallback, executeService } = require('.')
    const names = ${JSON.stringify(CHANNELS)}
    const subscribed = () => names.filter((name) => dc.channel('fallback-mechanisms:' + name).hasSubscribers)
    const failing = async () => { throw new Error('down') }
    Promise.all([
      executeWithFallback(failing, { operationName: 'op', defaultValue: 1, retry: { maxRetries: 1, baseDelayMs: 1 } }),
      executeService(failing, { operation: 'svc', timestamp: new Date() }, { maxRetries: 1, baseDelay: 1, breakerThreshold: 1, fallback: () => 2 }),
    ]).then(([a, b]) => console.log(JSON.stringify({ subscribed: subscribed(), data: [a.data, b.data] })))
  `
  const run = (env) =>
    new Promise((resolve, reject) => {
      const options = { cwd: path.join(__dirname, '..'), timeout: 20_000, env }
      execFile(process.execPath, ['-e', source], options, (error, out) => (error ? reject(error) : resolve(JSON.parse(out))))
    })
  // In memory: the suite's backend preload is not wanted here.
  const { NODE_OPTIONS, ...env } = process.env
  void NODE_OPTIONS
  assert.deepEqual(await run({ ...env, FALLBACK_MECHANISMS_OTEL: '0' }), { subscribed: [], data: [1, 2] })
  assert.deepEqual(await run(env), { subscribed: CHANNELS, data: [1, 2] }, 'with the API installed, the bridge subscribes to all five')
})

test('OpenTelemetry: span events on the call span, redacted, and the metrics', async (t) => {
  const api = require('@opentelemetry/api')
  const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
  const { MeterProvider, InMemoryMetricExporter, PeriodicExportingMetricReader, AggregationTemporality } = require('@opentelemetry/sdk-metrics')
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')

  // Registered after the package was loaded, as an app's instrumentation may be.
  const spans = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  api.trace.setGlobalTracerProvider(tracerProvider)
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  api.metrics.setGlobalMeterProvider(meterProvider)
  t.after(async () => {
    await meterProvider.shutdown()
    await tracerProvider.shutdown()
    api.metrics.disable()
    api.trace.disable()
    api.context.disable()
  })

  const key = { prompt: 'otel prompt', modelId: 'otel-model' }
  await executeWithFallback(async () => 'answer', { operationName: 'write', cacheKey: key })
  const tracer = api.trace.getTracer('observability-test')
  const result = await tracer.startActiveSpan('request', async (span) => {
    try {
      return await executeWithFallback(flaky(10).operation, { operationName: 'write', cacheKey: key, retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2 } })
    } finally {
      span.end()
    }
  })
  assert.equal(result.metadata.fallbackType, 'cache')
  await executeWithFallback(fail('down'), { operationName: 'title', defaultValue: 'Untitled' })
  await executeWithFallback(fail('down'), { operationName: 'title', defaultValue: 'Untitled' })
  await executeWithFallback(fail('down'), { operationName: 'summarise', userId: 'u1', queueOnFailure: { type: 'ai', payload: {} } })
  assert.equal(aiResponseCache.get('never cached', 'otel-model'), null)

  // The events go on the call's own span (lib/spans.js), a child of the
  // active one, and their `error` says the error's name, not its message
  // (README, "Redaction").
  const finished = spans.getFinishedSpans()
  const request = finished.find((span) => span.name === 'request')
  const call = finished.find((span) => span.name === 'fallback write' && span.parentSpanContext && span.parentSpanContext.spanId === request.spanContext().spanId)
  assert.ok(call, 'the call span is a child of the active span')
  assert.deepEqual(request.events, [])
  assert.deepEqual(
    call.events.map((event) => [event.name, event.attributes]),
    [
      ['fallback-mechanisms.retry', { type: 'retry', operationName: 'write', attempt: 2, error: 'Error' }],
      ['fallback-mechanisms.retry', { type: 'retry', operationName: 'write', attempt: 3, error: 'Error' }],
      ['fallback-mechanisms.fallback', { type: 'cache', operationName: 'write', error: 'Error', errorClass: 'other' }],
    ],
  )

  await reader.forceFlush()
  const metrics = new Map()
  for (const resource of exporter.getMetrics()) {
    for (const scope of resource.scopeMetrics) {
      if (scope.scope.name !== 'fallback-mechanisms') continue
      for (const metric of scope.metrics) metrics.set(metric.descriptor.name, metric.dataPoints)
    }
  }
  const points = (name) => (metrics.get(name) || []).map((point) => [point.attributes, point.value])
  assert.deepEqual(points('fallback_mechanisms.fallbacks'), [
    [{ 'fallback.type': 'cache', 'operation.name': 'write' }, 1],
    [{ 'fallback.type': 'default', 'operation.name': 'title' }, 2],
    [{ 'fallback.type': 'queue', 'operation.name': 'summarise' }, 1],
  ])
  assert.deepEqual(points('fallback_mechanisms.retries'), [[{ 'operation.name': 'write' }, 2]])
  const stats = aiResponseCache.getStats()
  assert.ok(stats.hits >= 1 && stats.misses >= 1, `hits and misses counted: ${JSON.stringify(stats)}`)
  assert.deepEqual(points('fallback_mechanisms.cache.hits'), [[{}, stats.hits]])
  assert.deepEqual(points('fallback_mechanisms.cache.misses'), [[{}, stats.misses]])
  assert.deepEqual(points('fallback_mechanisms.queue.depth'), [[{}, 1]])
})
