'use strict'

// Failure classes (issue #22): `classify(error)` over the shapes the
// providers' SDKs throw (__test__/fixtures/error-shapes.js), replaced with
// `configure({ classify })`; alternatives that answer only some classes
// (`on`); the class on `metadata.errorClass`, on the events and on the
// spans (telemetry-spans.test.js).

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { executeWithFallback, classify, configure, aiResponseCache } = require('..')
const { assertThrowsCoded, published } = require('./helpers')
const { SHAPES } = require('./fixtures/error-shapes')

const CLASSES = ['rateLimit', 'overloaded', 'contextWindow', 'contentPolicy', 'auth', 'timeout', 'network', 'other']

let n = 0
const unique = (name) => `${name}-${process.pid}-${++n}`

/** An operation that counts its calls and fails with `error`, or answers `value`. */
function model({ error, value }) {
  const made = {
    calls: 0,
    operation: async () => {
      made.calls++
      if (error !== undefined) throw typeof error === 'function' ? error() : error
      return value
    },
  }
  return made
}

const SHAPE = Object.fromEntries(SHAPES.map(([provider, shape, make]) => [`${provider}: ${shape}`, make]))
const contextWindow = SHAPE['openai: BadRequestError context_length_exceeded']
const contentPolicy = SHAPE['google: finishReason SAFETY']
const auth = SHAPE['anthropic: 401 authentication_error']
const rateLimit = SHAPE['bedrock: ThrottlingException']

/** The warnings emitted while `fn` runs (and the turn after). */
async function warningsDuring(fn) {
  const seen = []
  const onWarning = (warning) => seen.push(warning)
  process.on('warning', onWarning)
  try {
    await fn()
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', onWarning)
  }
  return seen
}

test('classify: every recorded SDK error shape gets its class', () => {
  assert.ok(SHAPES.length >= 60)
  for (const [provider, shape, make, expected] of SHAPES) {
    assert.ok(CLASSES.includes(expected), `${provider}: ${shape}: ${expected} is a class`)
    assert.equal(classify(make()), expected, `${provider}: ${shape}`)
  }
  for (const errorClass of CLASSES) {
    assert.ok(SHAPES.some(([, , , expected]) => expected === errorClass), `a fixture of ${errorClass}`)
  }
})

test('classify: a real fetch to a closed port is a network failure', async () => {
  const server = http.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  const error = await fetch(`http://127.0.0.1:${port}/`).then(
    () => assert.fail('the port was closed'),
    (thrown) => thrown,
  )
  assert.equal(error.message, 'fetch failed')
  assert.equal(classify(error), 'network')
})

test('classify: a hostile value never throws and is classified by what could be read', () => {
  const throwing = new Proxy({}, { get() { throw new Error('no reading') }, getPrototypeOf() { throw new Error('no prototype') } })
  assert.equal(classify(throwing), 'other')
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  assert.equal(classify(proxy), 'other')
  const getters = new Error('x')
  Object.defineProperty(getters, 'message', { get() { throw new Error('no message') } })
  Object.defineProperty(getters, 'constructor', { get() { throw new Error('no constructor') } })
  getters.status = 429
  assert.equal(classify(getters), 'rateLimit', 'what could be read still counts')
  const cyclic = new Error('wrapper')
  cyclic.cause = cyclic
  assert.equal(classify(cyclic), 'other')
  const deep = { cause: { cause: { cause: { cause: { cause: { code: 'ECONNRESET' } } } } } }
  assert.equal(classify(deep), 'other', 'wrapped errors are followed a few levels only')
  assert.equal(classify({ cause: { code: 'ECONNRESET' } }), 'network')
  assert.equal(classify(Object.assign(new Error('x'.repeat(1_000_000)), { code: 'ETIMEDOUT' })), 'timeout')
  assert.equal(classify(Symbol('s')), 'other')
  assert.equal(classify(() => {}), 'other')
  assert.equal(classify(), 'other')
})

test('configure({ classify }) replaces the classifier, gets the built-in, and is restored by undefined or null', async () => {
  const seen = []
  const custom = (error, builtIn) => {
    seen.push([error, builtIn])
    return error instanceof Error && error.message === 'quota of the day spent' ? 'rateLimit' : builtIn(error)
  }
  configure({ classify: custom })
  try {
    const spent = new Error('quota of the day spent')
    const result = await executeWithFallback(async () => { throw spent }, { operationName: unique('custom'), defaultValue: 'd' })
    assert.equal(result.metadata.errorClass, 'rateLimit')
    assert.equal(seen.length, 1, 'called once for the failure')
    assert.equal(seen[0][0], spent)
    assert.equal(seen[0][1], classify, 'the built-in is the second argument')
    const other = await executeWithFallback(async () => { throw auth() }, { operationName: unique('custom'), defaultValue: 'd' })
    assert.equal(other.metadata.errorClass, 'auth', 'answered by the built-in through the custom one')
    // The exported classify stays the built-in.
    assert.equal(classify(spent), 'other')
  } finally {
    configure({ classify: undefined })
  }
  const after = await executeWithFallback(async () => { throw new Error('quota of the day spent') }, { operationName: unique('custom'), defaultValue: 'd' })
  assert.equal(after.metadata.errorClass, 'other')

  configure({ classify: () => 'auth' })
  configure({ classify: null })
  const restored = await executeWithFallback(async () => { throw rateLimit() }, { operationName: unique('custom'), defaultValue: 'd' })
  assert.equal(restored.metadata.errorClass, 'rateLimit')
})

test('a classifier that throws or answers no class: the built-in answers, with one coded warning each', async () => {
  const warnings = await warningsDuring(async () => {
    try {
      configure({ classify: () => { throw new Error('classifier broke') } })
      for (let i = 0; i < 2; i++) {
        const result = await executeWithFallback(async () => { throw contextWindow() }, { operationName: unique('throws'), defaultValue: 'd' })
        assert.equal(result.metadata.errorClass, 'contextWindow')
      }
      const hostile = new Error('x')
      Object.defineProperty(hostile, 'message', { get() { throw new Error('no message') } })
      configure({ classify: () => { throw hostile } })
      const thrownHostile = await executeWithFallback(async () => { throw contextWindow() }, { operationName: unique('hostile'), defaultValue: 'd' })
      assert.equal(thrownHostile.metadata.errorClass, 'contextWindow')
      const { proxy: revoked, revoke } = Proxy.revocable({}, {})
      revoke()
      for (const answer of ['RateLimit', undefined, Promise.resolve('auth'), revoked]) {
        configure({ classify: () => answer })
        const result = await executeWithFallback(async () => { throw contentPolicy() }, { operationName: unique('answers'), defaultValue: 'd' })
        assert.equal(result.metadata.errorClass, 'contentPolicy')
      }
    } finally {
      configure({ classify: null })
    }
  })
  const ours = warnings.filter((warning) => warning.code === 'FALLBACK_CLASSIFY_FAILED')
  assert.equal(ours.length, 2, ours.map((warning) => warning.message).join('\n'))
  assert.match(ours[0].message, /configure\(\{ classify \}\) threw .*classifier broke.*built-in/)
  assert.match(ours[1].message, /configure\(\{ classify \}\) returned "RateLimit", not a failure class/)
})

test('configure({ classify }) refuses what is not a function, and changes nothing then', async () => {
  for (const value of [5, 'auth', {}, [], true]) {
    assertThrowsCoded(assert, () => configure({ classify: value }), TypeError, 'ERR_INVALID_ARG_TYPE', /^The "options\.classify" property must be of type function\. Received /)
  }
  let called = 0
  assertThrowsCoded(assert, () => configure({ classify: () => { called++; return 'auth' }, nope: 1 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Known options: .*classify, redact$/)
  const result = await executeWithFallback(async () => { throw rateLimit() }, { operationName: unique('refused'), defaultValue: 'd' })
  assert.equal(result.metadata.errorClass, 'rateLimit')
  assert.equal(called, 0, 'the refused configure set nothing')
})

test('a call that succeeds classifies nothing', async () => {
  let called = 0
  configure({ classify: (error, builtIn) => { called++; return builtIn(error) } })
  try {
    const plain = await executeWithFallback(async () => 'ok', { operationName: unique('ok'), defaultValue: 'd' })
    assert.equal(plain.metadata, undefined)
    const chained = await executeWithFallback(async () => 'ok', { operationName: unique('ok'), alternatives: [{ name: unique('alt'), operation: async () => 'alt', on: ['auth'] }] })
    assert.equal(chained.data, 'ok')
    const retried = await executeWithFallback(async () => 'ok', { operationName: unique('ok'), retry: { maxRetries: 1, baseDelayMs: 1 } })
    assert.deepEqual(retried.metadata, { attempts: 1 })
    assert.equal(called, 0)
  } finally {
    configure({ classify: null })
  }
})

/** A chain of a primary failing with `error`, a lenient model, a bigger model and a cache. */
async function routed(error, { cached = true, alternativesOn } = {}) {
  const primary = model({ error })
  const lenient = model({ value: 'lenient answer' })
  const bigger = model({ value: 'bigger answer' })
  const cacheKey = { prompt: unique('prompt'), modelId: 'gpt-4o' }
  if (cached) aiResponseCache.set(cacheKey.prompt, 'cached answer', cacheKey.modelId)
  const result = await executeWithFallback(primary.operation, {
    operationName: unique('routed'),
    cacheKey,
    alternatives: [
      { name: unique('lenient'), operation: lenient.operation, on: ['contentPolicy'] },
      { name: unique('bigger'), operation: bigger.operation, on: ['contextWindow'] },
    ],
    alternativesOn,
  })
  return { result, primary: primary.calls, lenient: lenient.calls, bigger: bigger.calls }
}

test('on: a context-window error goes to the bigger model, a content-policy refusal to the lenient one', async () => {
  const big = await routed(contextWindow())
  assert.deepEqual([big.primary, big.lenient, big.bigger], [1, 0, 1])
  assert.equal(big.result.data, 'bigger answer')
  assert.equal(big.result.metadata.fallbackType, 'alternative')
  assert.equal(big.result.metadata.errorClass, 'contextWindow')

  const refused = await routed(contentPolicy())
  assert.deepEqual([refused.primary, refused.lenient, refused.bigger], [1, 1, 0])
  assert.equal(refused.result.data, 'lenient answer')
  assert.equal(refused.result.metadata.errorClass, 'contentPolicy')
})

test('on: an auth error calls no restricted alternative and falls straight through to the cache', async () => {
  const { result, primary, lenient, bigger } = await routed(auth())
  assert.deepEqual([primary, lenient, bigger], [1, 0, 0])
  assert.equal(result.data, 'cached answer')
  assert.equal(result.metadata.fallbackType, 'cache')
  assert.equal(result.metadata.errorClass, 'auth')

  const nothing = await routed(auth(), { cached: false })
  assert.deepEqual([nothing.lenient, nothing.bigger], [0, 0])
  assert.equal(nothing.result.success, false)
  assert.equal(nothing.result.metadata.errorClass, 'auth')
})

test('on: an alternative without `on` answers every class; alternativesOn still decides first', async () => {
  const primary = model({ error: auth })
  const restricted = model({ value: 'restricted' })
  const open = model({ value: 'open' })
  const result = await executeWithFallback(primary.operation, {
    operationName: unique('open'),
    alternatives: [
      { name: unique('restricted'), operation: restricted.operation, on: ['rateLimit', 'overloaded'] },
      { name: unique('open'), operation: open.operation },
    ],
  })
  assert.equal(result.data, 'open')
  assert.deepEqual([restricted.calls, open.calls], [0, 1])

  const stopped = await routed(contextWindow(), { alternativesOn: () => false })
  assert.deepEqual([stopped.lenient, stopped.bigger], [0, 0])
  assert.equal(stopped.result.data, 'cached answer')
  assert.equal(stopped.result.metadata.errorClass, 'contextWindow')
})

test('on: each failure routes by its own class along the chain', async () => {
  const primary = model({ error: contextWindow })
  const bigger = model({ error: rateLimit })
  const lenient = model({ value: 'never' })
  const otherBig = model({ value: 'other bigger answer' })
  const seen = await published(['alternative', 'fallback'], async () => {
    const result = await executeWithFallback(primary.operation, {
      operationName: 'routing-events',
      cooldownMs: 0,
      alternatives: [
        { name: 'bigger', operation: bigger.operation, on: ['contextWindow'] },
        { name: 'lenient', operation: lenient.operation, on: ['contentPolicy'] },
        { name: 'other-bigger', operation: otherBig.operation, on: ['contextWindow', 'rateLimit'] },
      ],
    })
    assert.equal(result.data, 'other bigger answer')
    assert.equal(result.metadata.errorClass, 'contextWindow', "the class of the primary's error, which the result reports")
  })
  assert.deepEqual([primary.calls, bigger.calls, lenient.calls, otherBig.calls], [1, 1, 0, 1])
  const fields = seen.map(([channel, { outcome, alternative, errorClass, type }]) => [channel, type, outcome, alternative, errorClass])
  assert.deepEqual(fields, [
    ['alternative', 'alternative', 'failure', 'bigger', 'rateLimit'],
    ['alternative', 'alternative', 'passedOver', 'lenient', 'rateLimit'],
    ['alternative', 'alternative', 'success', 'other-bigger', 'rateLimit'],
    ['fallback', 'alternative', undefined, 'other-bigger', 'contextWindow'],
  ])
})

test('metadata.errorClass on every fallback type and on a failed result, and on the fallback events', async () => {
  const seen = await published(['fallback'], async () => {
    const key = { prompt: unique('prompt'), modelId: 'm' }
    aiResponseCache.set(key.prompt, 'cached', key.modelId)
    const cache = await executeWithFallback(async () => { throw rateLimit() }, { operationName: 'c1', cacheKey: key })
    assert.deepEqual([cache.metadata.fallbackType, cache.metadata.errorClass], ['cache', 'rateLimit'])
    const byDefault = await executeWithFallback(async () => { throw auth() }, { operationName: 'c2', defaultValue: 'd' })
    assert.deepEqual([byDefault.metadata.fallbackType, byDefault.metadata.errorClass], ['default', 'auth'])
    const queued = await executeWithFallback(async () => { throw contextWindow() }, { operationName: 'c3', userId: 'u', queueOnFailure: { type: 'ai', payload: {} } })
    assert.deepEqual([queued.metadata.fallbackType, queued.metadata.errorClass], ['queue', 'contextWindow'])
    const skipped = await executeWithFallback(async () => { throw SHAPE['node: ECONNRESET']() }, { operationName: 'c4', service: unique('svc'), allowSkip: true })
    assert.deepEqual([skipped.metadata.fallbackType, skipped.metadata.errorClass], ['skip', 'network'])
    const failed = await executeWithFallback(async () => { throw contentPolicy() }, { operationName: 'c5' })
    assert.equal(failed.success, false)
    assert.equal(failed.metadata.errorClass, 'contentPolicy')
    const timedOut = await executeWithFallback(() => new Promise(() => {}), { operationName: 'c6', timeoutMs: 20, defaultValue: 'd' })
    assert.equal(timedOut.metadata.errorClass, 'timeout')
  })
  assert.deepEqual(
    seen.map(([, { type, operationName, errorClass }]) => [type, operationName, errorClass]),
    [
      ['cache', 'c1', 'rateLimit'],
      ['default', 'c2', 'auth'],
      ['queue', 'c3', 'contextWindow'],
      ['skip', 'c4', 'network'],
      ['default', 'c6', 'timeout'],
    ],
  )
})

test('on is checked: an array of failure class names, refused with a code naming it', async () => {
  const ok = { name: 'ok', operation: async () => 'ok' }
  const cases = [
    ['auth', TypeError, 'ERR_INVALID_ARG_TYPE', /^The "options\.alternatives\[1\]\.on" property must be an instance of Array\. Received type string \('auth'\)$/],
    [{ 0: 'auth' }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.alternatives\[1\]\.on" property must be an instance of Array/],
    [null, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.alternatives\[1\]\.on" property must be an instance of Array\. Received null/],
    [['auth', 'quota'], TypeError, 'ERR_INVALID_ARG_VALUE', /^The "options\.alternatives\[1\]\.on\[1\]" property must be one of 'rateLimit', 'overloaded', 'contextWindow', 'contentPolicy', 'auth', 'timeout', 'network', 'other'\. Received type string \('quota'\)$/],
    [[5], TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.alternatives\[1\]\.on\[0\]" property must be one of/],
    [new Array(65).fill('auth'), RangeError, 'ERR_OUT_OF_RANGE', /"options\.alternatives\[1\]\.on\.length" is out of range/],
  ]
  for (const [on, type, code, message] of cases) {
    let called = false
    await assert.rejects(
      executeWithFallback(async () => { called = true }, { operationName: unique('bad-on'), alternatives: [ok, { name: 'x', operation: async () => 'x', on }] }),
      (error) => {
        assert.ok(error instanceof type, `${error.name}: ${error.message}`)
        assert.equal(error.code, code)
        assert.match(error.message, message)
        return true
      },
    )
    assert.equal(called, false, 'nothing runs')
  }
  // Read once: a getter that answers otherwise the second time is held to its first answer.
  let reads = 0
  const fickle = { name: unique('fickle'), operation: async () => 'fickle', get on() { reads++; return reads === 1 ? ['auth'] : ['bogus'] } }
  const result = await executeWithFallback(async () => { throw auth() }, { operationName: unique('fickle'), alternatives: [fickle] })
  assert.equal(result.data, 'fickle')
  assert.equal(reads, 1)
  // An empty `on` answers no class: the alternative is never called.
  const never = model({ value: 'never' })
  const empty = await executeWithFallback(async () => { throw auth() }, { operationName: unique('empty'), defaultValue: 'd', alternatives: [{ name: unique('never'), operation: never.operation, on: [] }] })
  assert.equal(empty.data, 'd')
  assert.equal(never.calls, 0)
})
