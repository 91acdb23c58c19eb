'use strict'

// OpenTelemetry spans and metrics that follow the GenAI semantic
// conventions (issue #21; README, "Observability"): a span per
// executeWithFallback call, a span per model attempt under it, the GenAI
// duration histogram and the cooldown counter, on the SDK's in-memory
// exporters, and `configure({ redact })`: no error message on any span
// unless `redact` returns it.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const path = require('node:path')

const api = require('@opentelemetry/api')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { MeterProvider, InMemoryMetricExporter, PeriodicExportingMetricReader, AggregationTemporality } = require('@opentelemetry/sdk-metrics')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')

const { executeWithFallback, configure, aiResponseCache } = require('..')
const { resetSingletons, flaky, sleep, assertThrowsCoded } = require('./helpers')

const spans = new InMemorySpanExporter()
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
api.trace.setGlobalTracerProvider(tracerProvider)
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.DELTA)
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })
const meterProvider = new MeterProvider({ readers: [reader] })
api.metrics.setGlobalMeterProvider(meterProvider)

test.after(async () => {
  await meterProvider.shutdown()
  await tracerProvider.shutdown()
})

let names = 0
/** A fresh name: cooldowns and breakers are per name, and the stores outlive a test. */
const fresh = (base) => `${base}-${process.pid}-${++names}`

test.beforeEach(async () => {
  resetSingletons()
  configure({ redact: undefined })
  spans.reset()
  await reader.forceFlush()
  metricExporter.reset()
})

const { INTERNAL, CLIENT } = api.SpanKind
const { UNSET, ERROR } = api.SpanStatusCode

const finished = () => spans.getFinishedSpans()
const named = (name) => finished().filter((span) => span.name === name)
const one = (name) => {
  const found = named(name)
  assert.equal(found.length, 1, `one span named ${name}: ${finished().map((s) => s.name).join(', ')}`)
  return found[0]
}
const parentOf = (span) => span.parentSpanContext && span.parentSpanContext.spanId
const idOf = (span) => span.spanContext().spanId
const events = (span) => span.events.map((event) => [event.name, event.attributes])

/** The data points of `name` collected since the last collection: `[attributes, value]`. */
async function points(name) {
  await reader.forceFlush()
  const found = []
  for (const resource of metricExporter.getMetrics()) {
    for (const scope of resource.scopeMetrics) {
      if (scope.scope.name !== 'fallback-mechanisms') continue
      for (const metric of scope.metrics) if (metric.descriptor.name === name) found.push(...metric.dataPoints.map((point) => [point.attributes, point.value, metric.descriptor]))
    }
  }
  return found
}

/** An error as a provider's client throws it: a status, and a message that holds the key. */
function secretError() {
  const error = new Error('401 Incorrect API key provided: sk-proj-SECRET123')
  error.status = 401
  error.code = 'invalid_api_key'
  return error
}

function throttled(message = 'Rate limited') {
  const error = new Error(message)
  error.status = 429
  error.headers = { 'retry-after': '30' }
  return error
}

test('a plain success: one INTERNAL call span and one CLIENT attempt span under it, and the GenAI duration', async () => {
  const operationName = fresh('write')
  const tracer = api.trace.getTracer('test')
  const result = await tracer.startActiveSpan('request', async (request) => {
    try {
      return await executeWithFallback(async () => 'answer', { operationName })
    } finally {
      request.end()
    }
  })
  assert.equal(result.data, 'answer')
  const call = one(`fallback ${operationName}`)
  const attempt = one(`chat ${operationName}`)
  assert.equal(call.kind, INTERNAL)
  assert.equal(parentOf(call), idOf(one('request')), 'the call span is a child of the active span')
  assert.equal(call.instrumentationScope.name, 'fallback-mechanisms')
  assert.equal(call.instrumentationScope.version, require('../package.json').version)
  assert.deepEqual(call.attributes, { 'operation.name': operationName, 'fallback.attempts': 1 })
  assert.equal(call.status.code, UNSET)
  assert.equal(attempt.kind, CLIENT)
  assert.equal(parentOf(attempt), idOf(call))
  assert.deepEqual(attempt.attributes, { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': operationName, 'fallback.attempt': 1 })
  assert.equal(attempt.status.code, UNSET)

  const [[attributes, value, descriptor]] = await points('gen_ai.client.operation.duration')
  assert.deepEqual(attributes, { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': operationName })
  assert.equal(value.count, 1)
  assert.equal(descriptor.unit, 's')
  assert.deepEqual(descriptor.advice.explicitBucketBoundaries, [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92])
})

test('the model is the call\'s service when it has one; spans the operation makes are children of its attempt', async () => {
  const operationName = fresh('summarise')
  const tracer = api.trace.getTracer('test')
  await executeWithFallback(async () => tracer.startActiveSpan('http POST', (span) => span.end()), { operationName, service: 'gpt-4o' })
  const attempt = one('chat gpt-4o')
  assert.equal(attempt.attributes['gen_ai.request.model'], 'gpt-4o')
  assert.equal(parentOf(one('http POST')), idOf(attempt))
})

test('a failure answered from the cache or a default: the attempt span fails, the call span has fallback.type and the event', async () => {
  const cacheKey = { prompt: fresh('prompt'), modelId: 'm' }
  const operationName = fresh('write')
  await executeWithFallback(async () => 'cached answer', { operationName, cacheKey })
  spans.reset()
  const fromCache = await executeWithFallback(async () => { throw new Error('model down') }, { operationName, cacheKey })
  assert.equal(fromCache.metadata.fallbackType, 'cache')
  const call = one(`fallback ${operationName}`)
  assert.equal(call.attributes['fallback.type'], 'cache')
  assert.equal(call.attributes['fallback.attempts'], 1)
  assert.equal(call.status.code, UNSET, 'a call a fallback answered is no error')
  assert.deepEqual(events(call), [['fallback-mechanisms.fallback', { type: 'cache', operationName, error: 'Error', errorClass: 'other' }]])
  assert.equal(call.attributes['fallback.error.class'], 'other')
  const attempt = one(`chat ${operationName}`)
  assert.equal(attempt.status.code, ERROR)
  assert.equal(attempt.status.message, 'Error')
  assert.equal(attempt.attributes['error.type'], 'Error')
  assert.equal(attempt.attributes['fallback.error.class'], 'other')

  const title = fresh('title')
  await executeWithFallback(async () => { throw new TypeError('no luck') }, { operationName: title, defaultValue: 'Untitled' })
  assert.equal(one(`fallback ${title}`).attributes['fallback.type'], 'default')
  assert.equal(one(`chat ${title}`).attributes['error.type'], 'TypeError')

  const failing = fresh('failing')
  const failed = await executeWithFallback(async () => { throw throttled() }, { operationName: failing })
  assert.equal(failed.success, false)
  const failedCall = one(`fallback ${failing}`)
  assert.equal(failedCall.status.code, ERROR, 'a call nothing answered is an error')
  assert.equal(failedCall.attributes['error.type'], '429')
  assert.equal(failedCall.attributes['fallback.type'], undefined)
  assert.equal(failedCall.attributes['fallback.error.class'], 'rateLimit')
  assert.equal(one(`chat ${failing}`).attributes['fallback.error.class'], 'rateLimit')

  const durations = await points('gen_ai.client.operation.duration')
  const failures = durations.filter(([attributes]) => attributes['error.type'] !== undefined).map(([attributes]) => attributes)
  assert.deepEqual(failures, [
    { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': operationName, 'error.type': 'Error' },
    { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': title, 'error.type': 'TypeError' },
    { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': failing, 'error.type': '429' },
  ])
  assert.deepEqual((await points('fallback_mechanisms.fallbacks')).map(([attributes, value]) => [attributes, value]), [
    [{ 'fallback.type': 'cache', 'operation.name': operationName }, 1],
    [{ 'fallback.type': 'default', 'operation.name': title }, 1],
  ])
})

test('retries: one attempt span each, numbered, and the retry events on the call span', async () => {
  const operationName = fresh('generate')
  const result = await executeWithFallback(flaky(2).operation, { operationName, retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 2 } })
  assert.equal(result.success, true)
  const call = one(`fallback ${operationName}`)
  const attempts = named(`chat ${operationName}`).sort((a, b) => a.attributes['fallback.attempt'] - b.attributes['fallback.attempt'])
  assert.deepEqual(attempts.map((span) => [span.attributes['fallback.attempt'], span.status.code, parentOf(span)]), [
    [1, ERROR, idOf(call)],
    [2, ERROR, idOf(call)],
    [3, UNSET, idOf(call)],
  ])
  assert.equal(call.attributes['fallback.attempts'], 3)
  assert.deepEqual(events(call), [
    ['fallback-mechanisms.retry', { type: 'retry', operationName, attempt: 2, error: 'Error' }],
    ['fallback-mechanisms.retry', { type: 'retry', operationName, attempt: 3, error: 'Error' }],
  ])
})

test('a timeout: the attempt span ends with error.type timeout, though the operation never settles', async () => {
  const operationName = fresh('slow')
  const result = await executeWithFallback(() => new Promise(() => {}), { operationName, timeoutMs: 20, defaultValue: 'later' })
  assert.equal(result.data, 'later')
  const attempt = one(`chat ${operationName}`)
  assert.equal(attempt.attributes['error.type'], 'timeout')
  assert.equal(attempt.status.code, ERROR)
  assert.equal(one(`fallback ${operationName}`).attributes['fallback.type'], 'default')
  const [[attributes]] = await points('gen_ai.client.operation.duration')
  assert.equal(attributes['error.type'], 'timeout')
})

test('the caller\'s signal: the call span and the attempt span in progress end as errors', async () => {
  const operationName = fresh('aborted')
  const controller = new AbortController()
  const call = executeWithFallback(() => new Promise(() => {}), { operationName, signal: controller.signal })
  await sleep(10)
  controller.abort()
  await assert.rejects(call, { name: 'AbortError' })
  await sleep(1)
  assert.equal(one(`chat ${operationName}`).attributes['error.type'], 'AbortError')
  const span = one(`fallback ${operationName}`)
  assert.equal(span.status.code, ERROR)
  assert.equal(span.attributes['error.type'], 'AbortError')
})

test('a call skipped up front and a call joined to one in flight: a call span without attempts', async () => {
  const service = fresh('facebook')
  const operationName = fresh('post')
  const options = { operationName, service, allowSkip: true, skipThreshold: 1 }
  await executeWithFallback(async () => { throw new Error('fb 500') }, options)
  spans.reset()
  const skipped = await executeWithFallback(async () => 'never', options)
  assert.equal(skipped.metadata.skippedWithoutCalling, true)
  const call = one(`fallback ${operationName}`)
  assert.deepEqual([call.attributes['fallback.type'], call.attributes['fallback.attempts']], ['skip', 0])
  assert.equal(named(`chat ${service}`).length, 0)

  spans.reset()
  const shared = fresh('shared')
  const dedupe = { operationName: shared, cacheKey: { prompt: fresh('p'), modelId: 'm' }, dedupe: true }
  let release
  const answer = new Promise((resolve) => { release = resolve })
  const host = executeWithFallback(() => answer, dedupe)
  const joiner = executeWithFallback(async () => 'never', dedupe)
  release('once')
  assert.deepEqual([(await host).data, (await joiner).data], ['once', 'once'])
  const calls = named(`fallback ${shared}`)
  assert.deepEqual(calls.map((span) => [span.attributes['fallback.attempts'], span.attributes['fallback.joined']]).sort(), [[0, true], [1, undefined]])
  assert.equal(named(`chat ${shared}`).length, 1)
})

for (const withRetry of [false, true]) {
  test(`alternatives${withRetry ? ' with timeoutMs' : ''}: a span per model, the 429 benches the primary (cooldown on the call span), passed over later`, async () => {
    const operationName = fresh('answer')
    const primary = fresh('primary')
    const alternative = fresh('alt')
    const options = {
      operationName,
      service: primary,
      alternatives: [{ name: alternative, operation: async () => 'from the alternative' }],
      ...(withRetry ? { timeoutMs: 5_000 } : {}),
    }
    const result = await executeWithFallback(async () => { throw throttled() }, options)
    assert.equal(result.metadata.alternative, alternative)
    const call = one(`fallback ${operationName}`)
    assert.equal(call.attributes['fallback.type'], 'alternative')
    assert.equal(call.attributes['fallback.alternative'], alternative)
    assert.equal(call.attributes['fallback.attempts'], 2)
    const first = one(`chat ${primary}`)
    const second = one(`chat ${alternative}`)
    assert.deepEqual([parentOf(first), parentOf(second)], [idOf(call), idOf(call)])
    assert.equal(first.attributes['error.type'], '429')
    assert.equal(second.status.code, UNSET)
    assert.equal(second.attributes['gen_ai.request.model'], alternative)
    const cooldown = call.events.find((event) => event.name === 'fallback-mechanisms.breaker')
    assert.ok(cooldown, `a cooldown event on the call span: ${JSON.stringify(events(call))}`)
    assert.equal(cooldown.attributes.name, primary)
    assert.equal(cooldown.attributes.error, 'Error 429')
    assert.deepEqual((await points('fallback_mechanisms.cooldowns')).map(([attributes, value]) => [attributes, value]), [
      [{ 'gen_ai.request.model': primary, 'operation.name': operationName }, 1],
    ])

    spans.reset()
    const later = await executeWithFallback(async () => 'never called', options)
    assert.deepEqual(later.metadata.benched, [primary])
    const laterCall = one(`fallback ${operationName}`)
    assert.deepEqual(laterCall.attributes['fallback.benched'], [primary])
    assert.equal(laterCall.attributes['fallback.attempts'], 1)
    assert.equal(named(`chat ${primary}`).length, 0, 'a benched model has no attempt span')
    assert.equal(one(`chat ${alternative}`).status.code, UNSET)
  })
}

/** An async iterable that yields `first`, then waits for `gate`, then yields `rest` or throws `error`. */
function gatedStream(first, gate, { rest = [], error } = {}) {
  return (async function* () {
    yield first
    await gate
    for (const chunk of rest) yield chunk
    if (error !== undefined) throw error
  })()
}

async function readAll(stream) {
  const chunks = []
  for await (const chunk of stream) chunks.push(chunk)
  return chunks
}

test('a streamed answer: the attempt span ends when the stream completes, after the call span ended', async () => {
  const operationName = fresh('stream')
  let open
  const gate = new Promise((resolve) => { open = resolve })
  const result = await executeWithFallback(async () => gatedStream('a', gate, { rest: ['b'] }), { operationName, cacheKey: { prompt: fresh('p'), modelId: 'm' } })
  assert.equal(result.success, true)
  await sleep(1)
  const call = one(`fallback ${operationName}`)
  assert.equal(named(`chat ${operationName}`).length, 0, 'the attempt span is open while the stream is')
  const reading = readAll(result.data)
  await sleep(5)
  assert.equal(named(`chat ${operationName}`).length, 0)
  open()
  assert.deepEqual(await reading, ['a', 'b'])
  const attempt = one(`chat ${operationName}`)
  assert.equal(parentOf(attempt), idOf(call))
  assert.equal(attempt.status.code, UNSET)
  const toMs = (time) => time[0] * 1e3 + time[1] / 1e6
  assert.ok(toMs(attempt.endTime) >= toMs(call.endTime), 'the attempt ended after its call')
  const [[attributes, value]] = await points('gen_ai.client.operation.duration')
  assert.equal(attributes['error.type'], undefined)
  assert.equal(value.count, 1)
})

test('a stream that fails mid-way: its attempt span fails, and the cooldown it starts is an event of that span', async () => {
  const operationName = fresh('stream')
  const primary = fresh('primary')
  let open
  const gate = new Promise((resolve) => { open = resolve })
  const result = await executeWithFallback(async () => gatedStream('a', gate, { error: throttled('429 mid-stream sk-proj-SECRET123') }), {
    operationName,
    service: primary,
    alternatives: [{ name: fresh('alt'), operation: async () => 'alt' }],
  })
  const reading = readAll(result.data)
  await sleep(1)
  open()
  await assert.rejects(reading, /mid-stream/)
  const attempt = one(`chat ${primary}`)
  assert.equal(attempt.status.code, ERROR)
  assert.equal(attempt.attributes['error.type'], '429')
  const cooldown = attempt.events.find((event) => event.name === 'fallback-mechanisms.breaker')
  assert.ok(cooldown, 'the cooldown read after the call span ended is on the attempt span')
  assert.equal(cooldown.attributes.name, primary)
  assert.deepEqual((await points('fallback_mechanisms.cooldowns')).map(([attributes]) => attributes['gen_ai.request.model']), [primary])
  assert.ok(!JSON.stringify(attempt.events).includes('SECRET123'))
})

test('a stream the consumer cancels, or the caller aborts mid-way: its attempt span ends, marked cancelled, not failed', async () => {
  for (const how of ['cancel', 'abort']) {
    const operationName = fresh(`stream-${how}`)
    const controller = new AbortController()
    const result = await executeWithFallback(async () => gatedStream('a', new Promise(() => {})), {
      operationName,
      cacheKey: { prompt: fresh('p'), modelId: 'm' },
      signal: how === 'abort' ? controller.signal : undefined,
    })
    const iterator = result.data[Symbol.asyncIterator]()
    assert.equal((await iterator.next()).value, 'a')
    const pending = iterator.next()
    if (how === 'cancel') await iterator.return()
    else controller.abort(new Error('user left'))
    await pending.catch(() => {})
    await sleep(1)
    const attempt = one(`chat ${operationName}`)
    assert.equal(attempt.status.code, UNSET, how)
    assert.equal(attempt.attributes['fallback.stream.cancelled'], true, how)
    assert.equal(attempt.attributes['error.type'], undefined, how)
  }
})

test('a caller who aborts just after the first chunk came: the stream is cancelled and its attempt span ends', async () => {
  const afterMicrotasks = (k, fn) => (k === 0 ? fn() : queueMicrotask(() => afterMicrotasks(k - 1, fn)))
  // The abort lands at different points between the first chunk and the call settling.
  for (const k of [2, 4, 6, 8, 12]) {
    const operationName = fresh('gap')
    const controller = new AbortController()
    let cancelled = false
    const model = new ReadableStream({
      start: (c) => c.enqueue('first'),
      pull: () => new Promise(() => {}),
      cancel: () => {
        cancelled = true
      },
    })
    const result = await executeWithFallback(
      async () => {
        afterMicrotasks(k, () => controller.abort(new Error('user left')))
        return model
      },
      { operationName, signal: controller.signal, timeoutMs: 60_000 },
    ).catch(() => undefined)
    // Settled before the abort: the caller's stream ends with its reason.
    if (result !== undefined) {
      const reader = result.data.getReader()
      await reader.read()
      await assert.rejects(reader.read(), /user left/)
    }
    // The attempt loop tells the call it was cancelled from another thread: on a loaded machine that takes a while.
    for (let waited = 0; waited < 10_000 && !(cancelled && named(`chat ${operationName}`).length === 1); waited += 10) await sleep(10)
    assert.equal(cancelled, true, `k = ${k}: the stream is cancelled`)
    assert.equal(named(`chat ${operationName}`).length, 1, `k = ${k}: the attempt span ended`)
  }
})

test('a key in an error code goes on no span or metric, whatever redact says', async () => {
  const operationName = fresh('code')
  const error = Object.assign(new Error('401 Incorrect API key provided: sk-proj-SECRET123'), { code: 'sk-proj-SECRET123', name: 'Bearer:SECRETtoken' })
  configure({ redact: () => '[redacted]' })
  try {
    await executeWithFallback(async () => Promise.reject(error), { operationName, retry: { maxRetries: 1, baseDelayMs: 1 }, defaultValue: 'd' })
  } finally {
    configure({ redact: null })
  }
  const attempt = named(`chat ${operationName}`)[0]
  assert.equal(attempt.attributes['error.type'], '_OTHER')
  const text = JSON.stringify([finished().map((span) => [span.attributes, span.status, span.events]), await points('gen_ai.client.operation.duration')])
  assert.ok(!text.includes('SECRET'), text)
})

/** Everything the exporters hold, as text. */
async function exported() {
  await reader.forceFlush()
  const all = finished().map((span) => ({ name: span.name, attributes: span.attributes, status: span.status, events: span.events }))
  return JSON.stringify({ spans: all, metrics: metricExporter.getMetrics() })
}

/** Calls that fail with `secretError()` on every path that puts an error on a span. */
async function secretCalls() {
  const operationName = fresh('secret')
  await executeWithFallback(async () => { throw secretError() }, { operationName, defaultValue: 'd', retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1 } })
  await executeWithFallback(async () => { throw secretError() }, { operationName })
  await executeWithFallback(async () => { throw secretError() }, {
    operationName,
    service: fresh('primary'),
    alternatives: [{ name: fresh('alt'), operation: async () => { throw secretError() } }, { name: fresh('alt'), operation: async () => 'ok' }],
  })
  const throttledSecret = secretError()
  throttledSecret.status = 429
  await executeWithFallback(async () => { throw throttledSecret }, { operationName, service: fresh('primary'), alternatives: [{ name: fresh('alt'), operation: async () => 'ok' }] })
  await assert.rejects(executeWithFallback(() => Promise.reject(secretError()), { operationName, signal: AbortSignal.abort(secretError()) }))
  return operationName
}

test('no secret from an error message reaches any span, event, attribute or metric with the default settings', async () => {
  const operationName = await secretCalls()
  const text = await exported()
  assert.ok(text.includes('Error 401 invalid_api_key'), 'the default: name, status and code')
  assert.ok(!text.includes('SECRET123'), text)
  assert.ok(!text.includes('Incorrect API key'))
  assert.ok(named(`fallback ${operationName}`).length >= 4)
})

test('configure({ redact }) says what of the message goes on spans; one that throws or returns no string gets the default', async () => {
  const seen = []
  configure({ redact: (message, error) => { seen.push([message, error instanceof Error]); return message.replace(/sk-[\w-]+/g, '[key]') } })
  const operationName = fresh('redacted')
  await executeWithFallback(async () => { throw secretError() }, { operationName })
  const call = one(`fallback ${operationName}`)
  assert.equal(call.status.message, '401 Incorrect API key provided: [key]')
  assert.equal(one(`chat ${operationName}`).status.message, '401 Incorrect API key provided: [key]')
  assert.deepEqual(seen[0], ['401 Incorrect API key provided: sk-proj-SECRET123', true])
  await secretCalls()
  const text = await exported()
  assert.ok(!text.includes('SECRET123'))
  assert.ok(text.includes('Incorrect API key provided: [key]'))

  for (const redact of [() => { throw new Error('redact broke') }, () => 42, () => undefined]) {
    configure({ redact })
    spans.reset()
    const name = fresh('redacted')
    await executeWithFallback(async () => { throw secretError() }, { operationName: name, defaultValue: 1 })
    assert.equal(one(`chat ${name}`).status.message, 'Error 401 invalid_api_key')
  }
  configure({ redact: () => 'x'.repeat(5_000) })
  spans.reset()
  const long = fresh('long')
  await executeWithFallback(async () => { throw secretError() }, { operationName: long, defaultValue: 1 })
  assert.equal(one(`chat ${long}`).status.message.length, 1_000)

  configure({ redact: null })
  spans.reset()
  const back = fresh('back')
  await executeWithFallback(async () => { throw secretError() }, { operationName: back, defaultValue: 1 })
  assert.equal(one(`chat ${back}`).status.message, 'Error 401 invalid_api_key', 'null: the default again')
})

test('configure({ redact }) that is not a function, or a configure that throws, changes nothing', async () => {
  configure({ redact: () => 'kept' })
  assertThrowsCoded(assert, () => configure({ redact: 42 }), TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.redact" property must be of type function/)
  assertThrowsCoded(assert, () => configure({ redact: 'x', cache: { maxEntries: 1 } }), TypeError, 'ERR_INVALID_ARG_TYPE', /redact/)
  assertThrowsCoded(assert, () => configure({ redact: () => 'new', cache: { maxEntries: 'many' } }), TypeError, 'ERR_INVALID_ARG_TYPE', /options\.cache\.maxEntries/)
  assertThrowsCoded(assert, () => configure({ redact: () => 'new', nope: 1 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Known options: .*redact/)
  aiResponseCache.set('a', 1, 'm')
  aiResponseCache.set('b', 2, 'm')
  assert.equal(aiResponseCache.getStats().size, 2, 'maxEntries: 1 was never applied')
  const name = fresh('kept')
  await executeWithFallback(async () => { throw secretError() }, { operationName: name, defaultValue: 1 })
  assert.equal(one(`chat ${name}`).status.message, 'kept', 'the redact set before is still the one')
})

test('FALLBACK_MECHANISMS_OTEL=0: no spans, though a TracerProvider is registered', async () => {
  const source = `
    const api = require('@opentelemetry/api')
    const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
    const exporter = new InMemorySpanExporter()
    api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
    const { executeWithFallback } = require('.')
    executeWithFallback(async () => 'ok', { operationName: 'op' }).then((r) => console.log(JSON.stringify({ data: r.data, spans: exporter.getFinishedSpans().map((s) => s.name) })))
  `
  const run = (env) =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', source], { cwd: path.join(__dirname, '..'), timeout: 20_000, env }, (error, out) => (error ? reject(error) : resolve(JSON.parse(out))))
    })
  const { NODE_OPTIONS, ...env } = process.env
  void NODE_OPTIONS
  assert.deepEqual(await run({ ...env, FALLBACK_MECHANISMS_OTEL: '0' }), { data: 'ok', spans: [] })
  assert.deepEqual(await run(env), { data: 'ok', spans: ['chat op', 'fallback op'] })
})
