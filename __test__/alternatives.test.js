'use strict'

// Alternatives (issue #13, items 1 and 2): a chain of models tried in
// order after the primary and its retries, before the cache; a model
// throttled (429/503/529 or a Retry-After) is benched in the shared store
// and passed over up front by every call and every process until its
// cooldown ends.

const test = require('node:test')
const assert = require('node:assert/strict')
const diagnostics = require('node:diagnostics_channel')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { streamText, simulateReadableStream, APICallError } = require('ai')
const { MockLanguageModelV2 } = require('ai/test')
const {
  executeWithFallback,
  getUserFriendlyMessage,
  aiResponseCache,
  integrationFailureManager,
  getCooldowns,
} = require('..')
const { MESSAGES, sleep } = require('./helpers')

const ALTERNATIVE_MESSAGE = "We encountered an issue, but don't worry! We've switched to an alternative so you can keep going."

let n = 0
const unique = (name) => `${name}-${process.pid}-${++n}`

/** An operation that counts its calls and fails with `error`, or answers `value`. */
function model({ error, value }) {
  const made = {
    calls: 0,
    signals: [],
    operation: async (signal) => {
      made.calls++
      made.signals.push(signal)
      if (error !== undefined) throw typeof error === 'function' ? error() : error
      return value
    },
  }
  return made
}

function status(code, headers) {
  const error = new Error(`status ${code}`)
  error.status = code
  if (headers) error.headers = headers
  return error
}

test('the first alternative that succeeds answers, in order, after the primary', async () => {
  const primary = model({ error: new Error('primary down') })
  const first = model({ error: new Error('first down') })
  const second = model({ value: 'second answer' })
  const third = model({ value: 'never asked' })
  const cacheKey = { prompt: unique('prompt'), modelId: 'claude' }
  const result = await executeWithFallback(primary.operation, {
    operationName: unique('answer'),
    cacheKey,
    alternatives: [
      { name: 'first', operation: first.operation },
      { name: 'second', operation: second.operation },
      { name: 'third', operation: third.operation },
    ],
  })
  assert.deepEqual([primary.calls, first.calls, second.calls, third.calls], [1, 1, 1, 0])
  assert.equal(result.success, true)
  assert.equal(result.data, 'second answer')
  assert.equal(result.metadata.usedFallback, true)
  assert.equal(result.metadata.fallbackType, 'alternative')
  assert.equal(result.metadata.alternative, 'second')
  assert.equal(result.message, ALTERNATIVE_MESSAGE)
  assert.equal(getUserFriendlyMessage(new Error('x'), 'alternative'), ALTERNATIVE_MESSAGE)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'second answer', "the answer the caller got is cached")
})

test('a primary that succeeds never calls an alternative; when all fail the cache, then the default answer', async () => {
  const alternative = model({ value: 'alt' })
  const cacheKey = { prompt: unique('prompt'), modelId: 'claude' }
  const ok = await executeWithFallback(async () => 'primary', {
    operationName: unique('op'),
    cacheKey,
    alternatives: [{ name: 'alt', operation: alternative.operation }],
  })
  assert.equal(ok.data, 'primary')
  assert.equal(ok.metadata, undefined)
  assert.equal(alternative.calls, 0)

  const failing = [model({ error: new Error('a') }), model({ error: new Error('b') })]
  const fromCache = await executeWithFallback(async () => { throw new Error('primary down') }, {
    operationName: unique('op'),
    cacheKey,
    alternatives: failing.map((m, i) => ({ name: `m${i}`, operation: m.operation })),
  })
  assert.equal(fromCache.metadata.fallbackType, 'cache')
  assert.equal(fromCache.data, 'primary')
  assert.equal(fromCache.message, MESSAGES.cache)

  const failed = await executeWithFallback(async () => { throw new Error('primary down') }, {
    operationName: unique('op'),
    alternatives: [{ name: 'x', operation: async () => { throw new Error('x down') } }],
  })
  assert.equal(failed.success, false)
  assert.equal(failed.message, 'primary down', "the primary's error is the call's")
})

test('alternativesOn chooses which errors move on; the default moves on for every error', async () => {
  const alternative = model({ value: 'alt' })
  const bad = status(400)
  const stopped = await executeWithFallback(async () => { throw bad }, {
    operationName: unique('op'),
    alternatives: [{ name: 'alt', operation: alternative.operation }],
    alternativesOn: (error) => error.status !== 400,
    defaultValue: 'default',
  })
  assert.equal(alternative.calls, 0)
  assert.equal(stopped.metadata.fallbackType, 'default')
  const moved = await executeWithFallback(async () => { throw bad }, {
    operationName: unique('op'),
    alternatives: [{ name: 'alt', operation: alternative.operation }],
  })
  assert.equal(alternative.calls, 1)
  assert.equal(moved.metadata.alternative, 'alt')
})

test('each alternative gets the same retry, timeoutMs and signal treatment', async () => {
  const primary = model({ error: new Error('p') })
  const slow = { calls: 0, signals: [], operation: (signal) => { slow.calls++; slow.signals.push(signal); return new Promise(() => {}) } }
  const flakyAlt = { calls: 0, operation: async () => { flakyAlt.calls++; if (flakyAlt.calls < 3) throw new Error('flaky'); return 'third time' } }
  const result = await executeWithFallback(primary.operation, {
    operationName: unique('op'),
    retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2 },
    timeoutMs: 40,
    alternatives: [
      { name: 'slow', operation: slow.operation },
      { name: 'flaky', operation: flakyAlt.operation },
    ],
  })
  assert.equal(primary.calls, 3, 'the primary and its retries')
  assert.equal(slow.calls, 3, 'retried after each timeout')
  assert.ok(slow.signals.every((s) => s instanceof AbortSignal && s.aborted), 'each timed-out attempt was aborted')
  assert.equal(flakyAlt.calls, 3)
  assert.equal(result.data, 'third time')
  assert.equal(result.metadata.alternative, 'flaky')
  assert.equal(result.metadata.attempts, 9)

  const controller = new AbortController()
  const hanging = model({ error: new Error('p') })
  const never = { calls: 0, operation: () => { never.calls++; setTimeout(() => controller.abort(new Error('user left')), 5); return new Promise(() => {}) } }
  const last = model({ value: 'not reached' })
  await assert.rejects(
    executeWithFallback(hanging.operation, {
      operationName: unique('op'),
      signal: controller.signal,
      alternatives: [{ name: 'never', operation: never.operation }, { name: 'last', operation: last.operation }],
    }),
    /user left/,
  )
  await sleep(10)
  assert.equal(last.calls, 0, "the caller's abort ends the chain")
})

test('a throttled model is benched for its Retry-After, passed over by later calls, and tried again once it ends', async () => {
  const name = unique('claude')
  const throttled = model({ error: () => Object.assign(status(429), { retryAfterMs: 300 }) })
  const backup = model({ value: 'backup' })
  const options = () => ({
    operationName: unique('op'),
    service: name,
    alternatives: [{ name: 'backup', operation: backup.operation }],
  })
  const first = await executeWithFallback(throttled.operation, options())
  assert.equal(first.metadata.alternative, 'backup')
  assert.equal(throttled.calls, 1)
  const cooldown = getCooldowns()[name]
  assert.ok(cooldown, 'listed by getCooldowns()')
  assert.ok(cooldown.until instanceof Date && cooldown.remainingMs > 0 && cooldown.remainingMs <= 300)

  const second = await executeWithFallback(throttled.operation, options())
  assert.equal(throttled.calls, 1, 'benched: not called')
  assert.equal(second.metadata.alternative, 'backup')
  assert.deepEqual(second.metadata.benched, [name])

  await sleep(350)
  await executeWithFallback(throttled.operation, options())
  assert.equal(throttled.calls, 2, 'called again once the cooldown ended')
})

test('what benches: 429, 503, 529 and a Retry-After; not a 500; cooldownMs is the default wait, maxCooldownMs the cap', async () => {
  const cases = [
    [status(429), true],
    [status(503), true],
    [status(529), true],
    [status(500), false],
    [new Error('plain'), false],
    [Object.assign(new Error('asks'), { headers: { 'retry-after': '2' } }), true],
  ]
  for (const [error, benches] of cases) {
    const name = unique('m')
    await executeWithFallback(async () => { throw error }, { operationName: unique('op'), service: name, alternatives: [] })
    assert.equal(name in getCooldowns(), benches, `${error.message} ${benches ? 'benches' : 'does not bench'}`)
  }
  const name = unique('m')
  await executeWithFallback(async () => { throw status(429) }, { operationName: unique('op'), service: name, alternatives: [], cooldownMs: 5000 })
  assert.ok(getCooldowns()[name].remainingMs > 4000)
  const capped = unique('m')
  await executeWithFallback(async () => { throw status(429, { 'retry-after': '3600' }) }, {
    operationName: unique('op'),
    service: capped,
    alternatives: [],
    maxCooldownMs: 1000,
  })
  assert.ok(getCooldowns()[capped].remainingMs <= 1000)
  const never = unique('m')
  await executeWithFallback(async () => { throw status(429) }, { operationName: unique('op'), service: never, alternatives: [], cooldownMs: 0 })
  assert.equal(never in getCooldowns(), false, 'cooldownMs: 0 never benches without a Retry-After')
  integrationFailureManager.clearFailures(name)
  assert.equal(name in getCooldowns(), false, 'clearFailures(name) clears its cooldown')
})

test('an AI SDK model rate-limited through streamText moves on to the alternative, which streams', async () => {
  const limited = new MockLanguageModelV2({
    doStream: async () => {
      throw new APICallError({ message: 'Rate limited', url: 'http://x.invalid', requestBodyValues: {}, statusCode: 429, responseHeaders: { 'retry-after': '5' }, isRetryable: false })
    },
  })
  const haiku = new MockLanguageModelV2({
    doStream: async () => ({
      stream: simulateReadableStream({
        chunks: [
          { type: 'text-start', id: '1' },
          { type: 'text-delta', id: '1', delta: 'from ' },
          { type: 'text-delta', id: '1', delta: 'haiku' },
          { type: 'text-end', id: '1' },
          { type: 'finish', finishReason: 'stop', usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3 } },
        ],
      }),
    }),
  })
  const name = unique('claude')
  const cacheKey = { prompt: unique('prompt'), modelId: name }
  const started = Date.now()
  const result = await executeWithFallback(async () => streamText({ model: limited, prompt: 'p', maxRetries: 0 }), {
    operationName: unique('chat'),
    service: name,
    cacheKey,
    alternatives: [{ name: 'haiku', operation: async () => streamText({ model: haiku, prompt: 'p' }) }],
  })
  assert.equal(result.metadata.fallbackType, 'alternative')
  assert.equal(result.metadata.alternative, 'haiku')
  let text = ''
  for await (const chunk of result.data) text += chunk
  assert.equal(text, 'from haiku')
  // Less the time this test took since the call (long under emulation).
  const { remainingMs } = getCooldowns()[name]
  assert.ok(remainingMs <= 5000 && remainingMs > 5000 - (Date.now() - started) - 100, `benched for the Retry-After of 5 s (${remainingMs} ms left)`)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'from haiku')
})

test('every model benched: nothing is called, the chain falls back with a COOLING_DOWN error', async () => {
  const a = unique('a')
  const b = unique('b')
  for (const name of [a, b]) {
    await executeWithFallback(async () => { throw status(429) }, { operationName: unique('op'), service: name, alternatives: [] })
  }
  const primary = model({ value: 'p' })
  const alt = model({ value: 'b' })
  const result = await executeWithFallback(primary.operation, {
    operationName: unique('op'),
    service: a,
    alternatives: [{ name: b, operation: alt.operation }],
  })
  assert.equal(primary.calls + alt.calls, 0)
  assert.equal(result.success, false)
  assert.equal(result.error.code, 'COOLING_DOWN')
  // Each wait said in whole seconds, rounded up (src/core/chain.rs).
  assert.match(result.error.message, new RegExp(`^Every model of ".+" is cooling down: ${a} \\(\\d+ s\\), ${b} \\(\\d+ s\\)$`))
  assert.deepEqual(result.metadata.benched, [a, b])
})

test('the alternative and fallback channels report each step', async () => {
  const seen = []
  const onAlternative = (message) => seen.push(['alternative', message])
  const onFallback = (message) => seen.push(['fallback', message])
  diagnostics.subscribe('fallback-mechanisms:alternative', onAlternative)
  diagnostics.subscribe('fallback-mechanisms:fallback', onFallback)
  const operationName = unique('op')
  try {
    await executeWithFallback(async () => { throw new Error('primary down') }, {
      operationName,
      alternatives: [
        { name: 'one', operation: async () => { throw new Error('one down') } },
        { name: 'two', operation: async () => 'two' },
      ],
    })
  } finally {
    diagnostics.unsubscribe('fallback-mechanisms:alternative', onAlternative)
    diagnostics.unsubscribe('fallback-mechanisms:fallback', onFallback)
  }
  const mine = seen.filter(([, m]) => m.operationName === operationName)
  assert.deepEqual(
    mine.map(([channel, m]) => [channel, m.type, m.alternative, m.outcome, m.error]),
    [
      ['alternative', 'alternative', 'one', 'failure', 'one down'],
      ['alternative', 'alternative', 'two', 'success', undefined],
      ['fallback', 'alternative', 'two', undefined, 'primary down'],
    ],
  )
})

test('bad alternatives are refused before anything runs, with codes that name the option', async () => {
  let calls = 0
  const operation = async () => {
    calls++
    return 1
  }
  const cases = [
    [{ alternatives: 'haiku' }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.alternatives/],
    [{ alternatives: [{ operation }] }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.alternatives\[0\]\.name/],
    [{ alternatives: [{ name: '', operation }] }, TypeError, 'ERR_INVALID_ARG_VALUE', /options\.alternatives\[0\]\.name/],
    [{ alternatives: [{ name: 'a', operation }, { name: 'b', operation: 'nope' }] }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.alternatives\[1\]\.operation/],
    [{ alternatives: [null] }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.alternatives\[0\]/],
    [{ alternativesOn: true }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.alternativesOn/],
    [{ cooldownMs: -1 }, RangeError, 'ERR_OUT_OF_RANGE', /options\.cooldownMs/],
    [{ maxCooldownMs: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE', /options\.maxCooldownMs/],
    [{ stream: 'yes' }, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.stream/],
  ]
  for (const [extra, type, code, message] of cases) {
    await assert.rejects(executeWithFallback(operation, { operationName: 'bad', ...extra }), (error) => {
      assert.ok(error instanceof type, `${JSON.stringify(extra)}: ${error}`)
      assert.equal(error.code, code)
      assert.match(error.message, message)
      return true
    })
  }
  assert.equal(calls, 0)
})

/** Runs `source` in a new process whose singletons are on `env`'s store; resolves what it printed. */
function run(source, env) {
  const clean = { ...process.env, NODE_OPTIONS: '' }
  for (const key of ['FALLBACK_MECHANISMS_DB', 'FALLBACK_MECHANISMS_REDIS_URL', 'FALLBACK_MECHANISMS_REDIS_PREFIX']) delete clean[key]
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', source], { cwd: path.join(__dirname, '..'), env: { ...clean, ...env }, timeout: 20_000 }, (error, out, err) =>
      error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out.trim()),
    )
  })
}

const BENCH = `
const { executeWithFallback } = require('.')
executeWithFallback(async () => { const e = new Error('slow down'); e.status = 429; e.headers = { 'retry-after': '30' }; throw e },
  { operationName: 'chat', service: 'claude', alternatives: [{ name: 'haiku', operation: async () => 'haiku' }] })
  .then((r) => console.log(r.metadata.alternative))`
const SKIPS = `
const { executeWithFallback, getCooldowns } = require('.')
let calls = 0
executeWithFallback(async () => { calls++; return 'claude' },
  { operationName: 'chat', service: 'claude', alternatives: [{ name: 'haiku', operation: async () => 'haiku' }] })
  .then((r) => console.log(JSON.stringify({ calls, data: r.data, benched: r.metadata && r.metadata.benched, listed: 'claude' in getCooldowns() })))`

test('a cooldown is shared by every process on the same store (SQLite file; Redis when the suite has one)', async () => {
  const stores = [{ FALLBACK_MECHANISMS_DB: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cooldowns-')), 'shared.db') }]
  if (process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL) {
    stores.push({ FALLBACK_MECHANISMS_REDIS_URL: process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL, FALLBACK_MECHANISMS_REDIS_PREFIX: unique('cooldowns') })
  }
  for (const env of stores) {
    assert.equal(await run(BENCH, env), 'haiku')
    const other = JSON.parse(await run(SKIPS, env))
    assert.deepEqual(other, { calls: 0, data: 'haiku', benched: ['claude'], listed: true }, JSON.stringify(env))
  }
  // Without a shared store, another process knows nothing of it.
  const alone = JSON.parse(await run(SKIPS, {}))
  assert.equal(alone.calls, 1)
})

test('alternativesOn: an async rule is awaited (false stops the chain, a rejection moves on)', async () => {
  let called = false
  const alternative = {
    name: unique('backup'),
    operation: async () => {
      called = true
      return 'from the backup'
    },
  }
  const down = async () => {
    throw new Error('down')
  }
  const stopped = await executeWithFallback(down, { operationName: unique('rule'), alternatives: [alternative], alternativesOn: async () => false, defaultValue: 'default' })
  assert.equal(called, false)
  assert.equal(stopped.metadata.fallbackType, 'default')
  const movedOn = await executeWithFallback(down, { operationName: unique('rule'), alternatives: [alternative], alternativesOn: async () => Promise.reject(new Error('rule broke')) })
  assert.equal(movedOn.data, 'from the backup')
  const yes = await executeWithFallback(down, { operationName: unique('rule'), alternatives: [alternative], alternativesOn: async () => true })
  assert.equal(yes.metadata.alternative, alternative.name)
})
