'use strict'

// Shared circuit breakers, rate limits and budgets (README, "Resilience
// across instances") in one process, on whichever store the suite runs on.
// __test__/shared-guards.test.js proves the sharing across processes.

const test = require('node:test')
const assert = require('node:assert/strict')
const { generateText } = require('ai')
const { MockLanguageModelV2 } = require('ai/test')
const { executeWithFallback, configure, getCircuitBreakerStatus, getLimits, getBudgets } = require('..')
const { sleep } = require('./helpers')

let next = 0
const unique = (name) => `${name}-${process.pid}-${++next}`
const down = () => Promise.reject(Object.assign(new Error('down'), { status: 500 }))
const quietly = () => process.on('warning', () => {})
quietly()

/** A fake provider: counts its calls, fails while `failing`. */
function provider(answer = 'ok') {
  const fake = {
    calls: 0,
    failing: false,
    operation: async () => {
      fake.calls++
      if (fake.failing) throw Object.assign(new Error('provider down'), { status: 500 })
      return answer
    },
  }
  return fake
}

const breaker = { size: 4, minimumCalls: 4, failureRatio: 0.5, halfOpenAfterMs: 300 }

test('a breaker opens at its failure ratio, fails fast, and one probe closes it', async () => {
  const service = unique('svc')
  const fake = provider()
  fake.failing = true
  const call = () => executeWithFallback(fake.operation, { operationName: unique('op'), service, breaker, defaultValue: 'safe' })
  for (let i = 0; i < 4; i++) assert.equal((await call()).data, 'safe')
  assert.equal(fake.calls, 4)
  const open = getCircuitBreakerStatus()[service]
  assert.equal(open.state, 'open')
  assert.equal(open.shared, true)
  assert.ok(open.openedAt instanceof Date)
  const failedFast = await call()
  assert.equal(fake.calls, 4, 'an open breaker calls nothing')
  assert.equal(failedFast.metadata.fallbackType, 'default')
  await sleep(350)
  assert.equal(getCircuitBreakerStatus()[service].state, 'half-open')
  fake.failing = false
  assert.equal((await call()).data, 'ok')
  assert.equal(fake.calls, 5)
  const closed = getCircuitBreakerStatus()[service]
  assert.equal(closed.state, 'closed')
  assert.equal(closed.probeHeldBy, null)
})

test('while the probe runs, every other call fails fast and the status names its holder', async () => {
  const service = unique('svc')
  const fake = provider()
  fake.failing = true
  const options = { operationName: unique('op'), service, breaker, defaultValue: 'safe' }
  for (let i = 0; i < 4; i++) await executeWithFallback(fake.operation, options)
  await sleep(350)
  let release
  const probe = executeWithFallback(() => new Promise((resolve) => (release = resolve)), options)
  await sleep(50)
  const held = getCircuitBreakerStatus()[service]
  assert.equal(held.state, 'half-open')
  assert.match(held.probeHeldBy, new RegExp(`^${process.pid}-`))
  assert.ok(held.probeSince instanceof Date)
  fake.failing = false
  for (let i = 0; i < 3; i++) assert.equal((await executeWithFallback(fake.operation, options)).data, 'safe')
  assert.equal(fake.calls, 4, 'no second probe')
  release('probed')
  assert.equal((await probe).data, 'probed')
  assert.equal(getCircuitBreakerStatus()[service].state, 'closed')
})

test('slow calls open a breaker with slowCallMs and slowCallRatio', async () => {
  const service = unique('svc')
  const slow = async () => {
    await sleep(30)
    return 'slow'
  }
  const options = { operationName: unique('op'), service, breaker: { size: 2, minimumCalls: 2, slowCallMs: 20, slowCallRatio: 1, halfOpenAfterMs: 60_000 }, defaultValue: 'safe' }
  await executeWithFallback(slow, options)
  await executeWithFallback(slow, options)
  assert.equal(getCircuitBreakerStatus()[service].state, 'open')
  assert.equal((await executeWithFallback(slow, options)).data, 'safe')
})

test('an alternative with an open breaker is passed over, and the next one answers', async () => {
  const primary = provider()
  primary.failing = true
  const broken = provider('broken')
  broken.failing = true
  const spare = provider('spare')
  const brokenName = unique('broken')
  const alternatives = [
    { name: brokenName, operation: broken.operation, breaker: { size: 1, minimumCalls: 1, halfOpenAfterMs: 60_000 } },
    { name: unique('spare'), operation: spare.operation },
  ]
  const options = { operationName: unique('op'), service: unique('svc'), alternatives }
  assert.equal((await executeWithFallback(primary.operation, options)).data, 'spare')
  assert.equal(broken.calls, 1)
  const second = await executeWithFallback(primary.operation, options)
  assert.equal(second.data, 'spare')
  assert.equal(second.metadata.alternative, alternatives[1].name)
  assert.equal(broken.calls, 1, 'its breaker is open: not called')
})

test('a model over its requests per minute is passed over and listed in metadata.limited', async () => {
  const name = unique('model')
  const limitedModel = provider('primary')
  const spare = provider('spare')
  const options = { operationName: unique('op'), service: name, limits: { requestsPerMinute: 2 }, alternatives: [{ name: unique('spare'), operation: spare.operation }] }
  assert.equal((await executeWithFallback(limitedModel.operation, options)).data, 'primary')
  assert.equal((await executeWithFallback(limitedModel.operation, options)).data, 'primary')
  const third = await executeWithFallback(limitedModel.operation, options)
  assert.equal(third.data, 'spare')
  assert.deepEqual(third.metadata.limited, [name])
  assert.equal(limitedModel.calls, 2)
  const listed = getLimits()[name]
  assert.deepEqual(listed.limits, { requestsPerMinute: 2 })
  assert.equal(listed.requests, 2)
})

test('with no model left under its limit the call falls back with RATE_LIMITED', async () => {
  const name = unique('model')
  const fake = provider()
  const options = { operationName: unique('op'), service: name, limits: { requestsPerMinute: 1 } }
  assert.equal((await executeWithFallback(fake.operation, options)).success, true)
  const refused = await executeWithFallback(fake.operation, options)
  assert.equal(refused.success, false)
  assert.equal(refused.error.code, 'RATE_LIMITED')
  assert.equal(refused.error.message, `Every model of "${options.operationName}" is over its rate limit or passed over: ${name}`)
  assert.equal(refused.metadata.errorClass, 'rateLimit')
  assert.deepEqual(refused.metadata.limited, [name])
  const withDefault = await executeWithFallback(fake.operation, { ...options, defaultValue: 'safe' })
  assert.equal(withDefault.data, 'safe')
  assert.equal(withDefault.metadata.fallbackType, 'default')
  assert.equal(fake.calls, 1)
})

test('concurrency slots are held while calls run and released when they end', async () => {
  const name = unique('model')
  let release
  const options = { operationName: unique('op'), service: name, limits: { concurrency: 1 }, defaultValue: 'busy' }
  const first = executeWithFallback(() => new Promise((resolve) => (release = resolve)), options)
  await sleep(20)
  assert.equal(getLimits()[name].concurrent, 1)
  assert.equal((await executeWithFallback(async () => 'second', options)).data, 'busy')
  release('first')
  assert.equal((await first).data, 'first')
  assert.equal((await executeWithFallback(async () => 'third', options)).data, 'third')
  assert.equal(getLimits()[name].concurrent, 0)
})

test('tokens per minute count what AI SDK results used', async () => {
  const name = unique('model')
  const model = new MockLanguageModelV2({
    doGenerate: async () => ({
      content: [{ type: 'text', text: 'hi' }],
      finishReason: 'stop',
      usage: { inputTokens: 30, outputTokens: 30, totalTokens: 60 },
      warnings: [],
    }),
  })
  const options = { operationName: unique('op'), service: name, limits: { tokensPerMinute: 100 }, defaultValue: 'limited' }
  const generate = () => generateText({ model, prompt: 'p' })
  assert.equal((await executeWithFallback(generate, options)).data.text, 'hi')
  assert.equal((await executeWithFallback(generate, options)).data.text, 'hi')
  assert.equal(getLimits()[name].tokens, 120)
  const third = await executeWithFallback(generate, options)
  assert.equal(third.data, 'limited', '120 of 100 tokens spent in the minute')
})

test('a spent budget refuses the call: BUDGET_EXCEEDED, metadata.overBudget, getBudgets', async () => {
  const key = unique('user')
  const fake = provider({ text: 'answer' })
  const budget = { key, tokens: 100, per: 'day' }
  const options = { operationName: unique('op'), budget, usage: () => ({ tokens: 60, cost: 0.5 }), defaultValue: 'over' }
  assert.deepEqual((await executeWithFallback(fake.operation, options)).data, { text: 'answer' })
  assert.deepEqual((await executeWithFallback(fake.operation, options)).data, { text: 'answer' })
  const refused = await executeWithFallback(fake.operation, options)
  assert.equal(refused.data, 'over')
  assert.equal(refused.metadata.overBudget, key)
  assert.equal(fake.calls, 2)
  const spent = getBudgets()[key]
  assert.equal(spent.tokens, 120)
  assert.equal(spent.cost, 1)
  assert.equal(spent.limits.per, 'day')
  assert.ok(spent.resetsAt instanceof Date && spent.resetsAt.getTime() > Date.now())
  const failed = await executeWithFallback(fake.operation, { operationName: unique('op'), budget })
  assert.equal(failed.error.code, 'BUDGET_EXCEEDED')
  assert.equal(failed.metadata.errorClass, 'rateLimit', 'a spent budget is a quota')
  assert.match(failed.error.message, new RegExp(`^The budget "${key}" of ".+" is spent until \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$`))
  assert.equal(new Date(failed.error.message.split(' until ')[1]).getTime(), spent.resetsAt.getTime())
  const costly = await executeWithFallback(fake.operation, { operationName: unique('op'), budget: { key: unique('tag'), cost: 0.1, per: 'month' }, usage: () => ({ cost: 0.2 }) })
  assert.equal(costly.success, true)
})

test('configure({ breakers, limits }) applies by name to every call, and null clears them', async () => {
  const name = unique('named')
  const fake = provider()
  configure({ limits: { [name]: { requestsPerMinute: 1 } } })
  try {
    const options = { operationName: unique('op'), service: name, defaultValue: 'limited' }
    assert.equal((await executeWithFallback(fake.operation, options)).data, 'ok')
    assert.equal((await executeWithFallback(fake.operation, options)).data, 'limited')
    assert.equal((await executeWithFallback(fake.operation, { ...options, limits: { requestsPerMinute: 5 } })).data, 'ok', "the call's own limits win")
  } finally {
    configure({ limits: null, breakers: null })
  }
  assert.equal((await executeWithFallback(fake.operation, { operationName: unique('op'), service: name })).data, 'ok')
})

test('bad guard options are refused with a coded error naming the option, and nothing changes', async () => {
  const bad = [
    [{ breaker: 5 }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.breaker"/],
    [{ breaker: { window: 'sliding' } }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.breaker\.window"/],
    [{ breaker: { size: 0 } }, RangeError, 'ERR_OUT_OF_RANGE', /"options\.breaker\.size"/],
    [{ breaker: { failureRatio: 1.5 } }, RangeError, 'ERR_OUT_OF_RANGE', /"options\.breaker\.failureRatio"/],
    [{ limits: { requestsPerMinute: 1.5 } }, RangeError, 'ERR_OUT_OF_RANGE', /"options\.limits\.requestsPerMinute"/],
    [{ limits: { concurrency: '2' } }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.limits\.concurrency"/],
    [{ budget: { tokens: 5, per: 'day' } }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.budget\.key"/],
    [{ budget: { key: 'k', tokens: 5, per: 'week' } }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.budget\.per"/],
    [{ budget: { key: 'k', per: 'day' } }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.budget"/],
    [{ usage: 'tokens' }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.usage"/],
    [{ alternatives: [{ name: 'a', operation: down, limits: { concurrency: 0 } }] }, RangeError, 'ERR_OUT_OF_RANGE', /"options\.alternatives\[0\]\.limits\.concurrency"/],
  ]
  for (const [options, type, code, message] of bad) {
    let called = false
    await assert.rejects(
      executeWithFallback(async () => (called = true), { operationName: unique('op'), ...options }),
      (error) => error instanceof type && error.code === code && message.test(error.message),
      JSON.stringify(options),
    )
    assert.equal(called, false)
  }
  const name = unique('named')
  assert.throws(() => configure({ breakers: { [name]: { size: 1 } }, limits: { [name]: { requestsPerMinute: 0 } } }), (error) => error instanceof RangeError && error.code === 'ERR_OUT_OF_RANGE' && /options\.limits\./.test(error.message))
  const fake = provider()
  fake.failing = true
  await executeWithFallback(fake.operation, { operationName: unique('op'), service: name, defaultValue: 'd' })
  await executeWithFallback(fake.operation, { operationName: unique('op'), service: name, defaultValue: 'd' })
  assert.equal(fake.calls, 2, 'the refused configure set no breaker')
})

test("a streamed answer's tokens are charged once the stream ends", async () => {
  const { streamText, simulateReadableStream } = require('ai')
  const name = unique('model')
  const key = unique('user')
  const model = new MockLanguageModelV2({
    doStream: async () => ({
      stream: simulateReadableStream({
        chunks: [
          { type: 'text-start', id: '1' },
          { type: 'text-delta', id: '1', delta: 'streamed ' },
          { type: 'text-delta', id: '1', delta: 'answer' },
          { type: 'text-end', id: '1' },
          { type: 'finish', finishReason: 'stop', usage: { inputTokens: 20, outputTokens: 22, totalTokens: 42 } },
        ],
      }),
    }),
  })
  const result = await executeWithFallback(async () => streamText({ model, prompt: 'p' }), {
    operationName: unique('op'),
    service: name,
    limits: { tokensPerMinute: 1_000 },
    budget: { key, tokens: 1_000, per: 'day' },
  })
  let text = ''
  for await (const chunk of result.data) text += chunk
  assert.equal(text, 'streamed answer')
  const deadline = Date.now() + 10_000
  while ((getLimits()[name]?.tokens ?? 0) === 0 && Date.now() < deadline) await sleep(20)
  assert.equal(getLimits()[name].tokens, 42)
  assert.equal(getBudgets()[key].tokens, 42)
})

test('usage past any count and lone surrogates never lose the outcomes stored with them', async () => {
  const refusedKey = { key: 'user-\ud800', tokens: 5, per: 'day' }
  await assert.rejects(
    executeWithFallback(async () => 'x', { operationName: unique('op'), budget: refusedKey }),
    (error) => error instanceof TypeError && error.code === 'ERR_INVALID_ARG_TYPE' && /"options\.budget\.key"/.test(error.message),
  )
  for (const usage of [() => ({ tokens: Infinity }), () => 1e30, () => ({ tokens: 1e300, cost: 1e308 })]) {
    const name = unique('model')
    const key = unique('user')
    const options = { operationName: unique('op'), service: name, limits: { concurrency: 1 }, budget: { key, cost: Number.MAX_VALUE, per: 'day' }, defaultValue: 'refused' }
    assert.equal((await executeWithFallback(async () => 'first', { ...options, usage })).data, 'first')
    assert.equal(getLimits()[name].concurrent, 0, 'the slot was released')
    assert.equal(getBudgets()[key].tokens, Number.MAX_SAFE_INTEGER, 'charged as the most a count can be')
    assert.equal((await executeWithFallback(async () => 'second', { ...options, usage })).data, 'second')
    assert.ok(Number.isFinite(getBudgets()[key].cost), 'a cost past any number stays a number')
  }
  // A model whose name holds a lone surrogate is not guarded (as it is not benched): the others' outcomes still count.
  const odd = unique('odd-\udc00')
  const name = unique('model')
  const both = (operation) => executeWithFallback(operation, { operationName: unique('op'), service: odd, alternatives: [{ name, operation, limits: { concurrency: 1 } }], limits: { concurrency: 1 } })
  assert.equal((await both(async () => 'ok')).data, 'ok')
  assert.equal(getLimits()[name], undefined)
  assert.equal(getLimits()[odd], undefined)
  assert.equal((await both(down)).success, false)
  assert.equal(getLimits()[name].concurrent, 0)
})

test("a call the caller's signal aborts mid-flight releases its concurrency slot", async () => {
  const name = unique('model')
  const controller = new AbortController()
  const options = { operationName: unique('op'), service: name, limits: { concurrency: 1 } }
  const hung = executeWithFallback(() => new Promise(() => {}), { ...options, signal: controller.signal })
  await sleep(20)
  assert.equal(getLimits()[name].concurrent, 1)
  controller.abort(new Error('stop'))
  await assert.rejects(hung, /stop/)
  // Released as the attempt ends (just after the call rejected); before the fix, never (renewed while the process lived).
  while (getLimits()[name].concurrent !== 0) await sleep(5)
  assert.equal((await executeWithFallback(async () => 'next', options)).data, 'next')
})

test("a probe abandoned for a hedge's answer does not close its breaker", async () => {
  const service = unique('svc')
  const fake = provider()
  fake.failing = true
  const options = { operationName: unique('op'), service, breaker, defaultValue: 'safe' }
  for (let i = 0; i < 4; i++) await executeWithFallback(fake.operation, options)
  assert.equal(getCircuitBreakerStatus()[service].state, 'open')
  await sleep(350)
  const hung = () => new Promise(() => {})
  const hedged = await executeWithFallback(hung, { ...options, hedge: { afterMs: 10 }, alternatives: [{ name: unique('fast'), operation: async () => 'hedge' }] })
  assert.equal(hedged.data, 'hedge')
  assert.equal(hedged.metadata.hedged, true)
  assert.notEqual(getCircuitBreakerStatus()[service].state, 'closed', 'the probe never answered')
})

test('a caller that aborts while the next model is admitted gets no call and no fallback', async () => {
  const { backgroundJobQueue } = require('..')
  const total = async () => (await backgroundJobQueue.getStats()).total
  const before = await total()
  const controller = new AbortController()
  let calledAfterAbort = false
  const pending = executeWithFallback(down, {
    operationName: unique('abort-admitted'),
    userId: 'u',
    queueOnFailure: { type: 'ai', payload: {} },
    signal: controller.signal,
    // Guarded: on a store that answers later (Redis) its admission is awaited.
    alternatives: [{ name: unique('guarded'), operation: () => { calledAfterAbort = controller.signal.aborted; return down() }, limits: { requestsPerMinute: 1000 } }],
    // The caller gives up just after the chain moved on, while it asks the guards.
    alternativesOn: () => {
      queueMicrotask(() => controller.abort(new Error('caller gave up')))
      return true
    },
  })
  await assert.rejects(pending, /caller gave up/)
  await sleep(100)
  assert.equal(calledAfterAbort, false, 'the alternative was called after the caller aborted')
  assert.equal(await total(), before, 'a fallback ran (a job was queued) after the caller aborted')
})
