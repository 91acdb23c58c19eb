'use strict'

// Cooldowns (README, "Cooldowns"): throttleMs reads how long a throttled
// model is benched; benchModel, cooldownsOf and cooldownStatus keep the
// cooldowns with the singletons' failure history (a promise on Redis);
// getCooldowns and getCircuitBreakerStatus show them; clearFailures
// clears them.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { Worker } = require('node:worker_threads')

const native = require('../lib/native')
const { executeService, executeWithFallback, getCircuitBreakerStatus, getCooldowns, integrationFailureManager } = require('..')
const { assertThrowsCoded, isRecentDate, sleep } = require('./helpers')
const { freePort } = require('../scripts/redis-server')

const DEFAULT = 30_000
const MAX = 300_000
const throttle = (error, defaultMs = DEFAULT, maxMs = MAX) => native.throttleMs(error, defaultMs, maxMs)

let unique = 0
const model = () => `model-${++unique}`

/**
 * native.cooldownsOf, with its `null` (no cooldown runs at all, answered
 * without a look-up) spelt out as one `null` per name.
 */
async function cooldownsOf(names, now) {
  const left = await native.cooldownsOf(names, now)
  return left === null ? names.map(() => null) : left
}

test('throttleMs: 429, 503 and 529 bench for the default, other statuses do not', () => {
  for (const status of [429, 503, 529]) {
    assert.equal(throttle({ status }), DEFAULT, `status ${status}`)
    assert.equal(throttle({ statusCode: status }), DEFAULT)
    assert.equal(throttle({ response: { status } }), DEFAULT)
    assert.equal(throttle({ response: { statusCode: status } }), DEFAULT)
    assert.equal(throttle({ status: String(status) }), DEFAULT, 'a numeric string')
    assert.equal(throttle(Object.assign(new Error('x'), { status })), DEFAULT)
  }
  for (const status of [500, 502, 400, 200, 429.5, '429x', 'soon', null, undefined, NaN]) {
    assert.equal(throttle({ status }), null, `status ${String(status)}`)
  }
  assert.equal(throttle(new Error('HTTP 429')), null, 'the message is not read')
  assert.equal(throttle({ status: 500, response: { status: 429 } }), null, 'the first status read wins')
})

test('throttleMs: an asked wait wins, capped; 0 never benches', () => {
  assert.equal(throttle({ status: 429, headers: { 'Retry-After': '7' } }), 7_000)
  assert.equal(throttle({ status: 500, headers: { 'retry-after': '2.5' } }), 2_500, 'any status')
  assert.equal(throttle({ headers: { 'RETRY-AFTER-MS': '1500' } }), 1_500)
  assert.equal(throttle({ response: { headers: new Headers({ 'retry-after': '3' }) } }), 3_000)
  assert.equal(throttle({ responseHeaders: { 'retry-after': '4' } }), 4_000)
  assert.equal(throttle({ retryAfterMs: 1234 }), 1234)
  const date = new Date(Date.now() + 10_000).toUTCString()
  const fromDate = throttle({ headers: { 'retry-after': date } })
  assert.ok(fromDate > 8_000 && fromDate <= 10_000, `HTTP-date: ${fromDate}`)
  assert.equal(throttle({ status: 429, headers: { 'retry-after': new Date(Date.now() - 60_000).toUTCString() } }), DEFAULT, 'a date past asks nothing')
  assert.equal(throttle({ headers: { 'retry-after': '86400' } }), MAX, 'capped')
  assert.equal(throttle({ retryAfterMs: Infinity }), MAX)
  assert.equal(throttle({ status: 429 }, 30_000, 10_000), 10_000)
  assert.equal(throttle({ status: 429 }, 0, MAX), null)
  assert.equal(throttle({ status: 429 }, DEFAULT, 0), null)
  assert.equal(throttle({ retryAfterMs: 5_000 }, DEFAULT, 0), null)
  assert.equal(throttle({ status: 429, retryAfterMs: 5_000 }, 0, MAX), 5_000)
})

test('throttleMs: one level into lastError (RetryError) and cause', () => {
  assert.equal(throttle({ lastError: { status: 429 } }), DEFAULT)
  assert.equal(throttle(new Error('wrapped', { cause: { statusCode: 503 } })), DEFAULT)
  assert.equal(throttle({ lastError: { responseHeaders: { 'retry-after': '9' } } }), 9_000)
  assert.equal(throttle({ lastError: { status: 500 }, cause: { status: 429 } }), null, 'lastError first')
  assert.equal(throttle({ lastError: {}, cause: { status: 529 } }), DEFAULT, 'then cause')
  assert.equal(throttle({ status: 500, cause: { status: 429 } }), null, 'only when the error says nothing')
  assert.equal(throttle({ cause: { cause: { status: 429 } } }), null, 'one level only')
})

test('throttleMs never throws for any error value', () => {
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  const throwing = {}
  for (const key of ['status', 'statusCode', 'response', 'headers', 'retryAfterMs', 'lastError', 'cause']) {
    Object.defineProperty(throwing, key, { get() { throw new Error(`no ${key}`) } })
  }
  const hostileHeaders = { headers: { get() { throw new Error('no') } }, status: 'x' }
  for (const error of [null, undefined, 'HTTP 429', 429, 0n, Symbol('s'), true, [], () => {}, proxy, throwing, hostileHeaders,
    { response: proxy }, { lastError: proxy }, { cause: throwing }, Object.create(null)]) {
    assert.equal(throttle(error), null, String(typeof error))
  }
  assert.equal(throttle({ lastError: throwing, cause: { status: 429 } }), DEFAULT, 'an unreadable lastError is passed over')
})

test('throttleMs: defaultMs and maxMs are checked', () => {
  assertThrowsCoded(assert, () => native.throttleMs({}, '1', 2), TypeError, 'ERR_INVALID_ARG_TYPE', /defaultMs/)
  assertThrowsCoded(assert, () => native.throttleMs({}, 1), TypeError, 'ERR_INVALID_ARG_TYPE', /maxMs/)
  assertThrowsCoded(assert, () => native.throttleMs({}, -1, 2), RangeError, 'ERR_OUT_OF_RANGE', /defaultMs/)
})

test('benchModel, cooldownsOf, getCooldowns and getCircuitBreakerStatus', async () => {
  const [gpt, claude, free] = [model(), model(), model()]
  const now = Date.now()
  assert.equal(await native.benchModel(gpt, 60_000, 'HTTP 429', now), null)
  assert.equal(await native.benchModel(claude, 20_000, 'HTTP 529 overloaded', now), null)
  assert.deepEqual(await cooldownsOf([gpt, free, claude], now + 1_000), [59_000, null, 19_000])
  assert.deepEqual(await cooldownsOf([], now), [])

  const cooldowns = getCooldowns()
  const mine = Object.keys(cooldowns).filter((name) => name === gpt || name === claude)
  assert.deepEqual(mine, [claude, gpt], 'ending soonest first')
  assert.deepEqual(Object.keys(cooldowns[gpt]), ['since', 'until', 'remainingMs', 'reason'])
  assert.equal(cooldowns[gpt].since.getTime(), now)
  assert.equal(cooldowns[gpt].until.getTime(), now + 60_000)
  assert.ok(cooldowns[gpt].remainingMs > 55_000 && cooldowns[gpt].remainingMs <= 60_000)
  assert.equal(cooldowns[claude].reason, 'HTTP 529 overloaded')

  // Never shortened; lengthened with the newer reason, since kept.
  assert.equal(await native.benchModel(gpt, 1_000, 'short', now + 10), null)
  assert.equal(getCooldowns()[gpt].until.getTime(), now + 60_000)
  assert.equal(await native.benchModel(gpt, 90_000, 'longer', now + 10), null)
  assert.equal(getCooldowns()[gpt].until.getTime(), now + 90_010)
  assert.equal(getCooldowns()[gpt].reason, 'longer')
  assert.equal(getCooldowns()[gpt].since.getTime(), now)

  const status = getCircuitBreakerStatus()[claude]
  assert.deepEqual(status, { state: 'open', failureCount: 0, openedAt: new Date(now), cooldownUntil: new Date(now + 20_000) })
  assert.equal(await native.benchModel(free, 0, 'nothing', now), null, 'ms 0 benches nothing')
  assert.equal(getCooldowns()[free], undefined)
  integrationFailureManager.clearFailures(gpt)
  integrationFailureManager.clearFailures(claude)
})

test('a breaker of the same name gets cooldownUntil', async () => {
  const operation = model()
  const failing = async () => { throw Object.assign(new Error('x'), { status: 500 }) }
  await executeService(failing, { operation, userId: 'u', timestamp: new Date() }, { maxRetries: 0 })
  const now = Date.now()
  assert.equal(await native.benchModel(operation, 5_000, 'HTTP 503', now), null)
  const breaker = getCircuitBreakerStatus()[operation]
  assert.equal(breaker.state, 'closed')
  assert.equal(breaker.failureCount, 1)
  assert.equal(breaker.cooldownUntil.getTime(), now + 5_000)
  integrationFailureManager.clearFailures(operation)
  assert.equal(getCircuitBreakerStatus()[operation].cooldownUntil, undefined)
})

test('names of any text are kept apart, __proto__ included', async () => {
  const names = ['__proto__', 'constructor', 'a:1:b\n{x}', 'é ☃', '']
  const now = Date.now()
  for (const name of names) assert.equal(await native.benchModel(name, 10_000, `r ${name}`, now), null)
  const cooldowns = getCooldowns()
  for (const name of names) {
    assert.ok(Object.hasOwn(cooldowns, name), JSON.stringify(name))
    assert.equal(cooldowns[name].reason, `r ${name}`)
  }
  assert.equal(Object.getPrototypeOf(cooldowns), Object.prototype)
  assert.ok(Object.hasOwn(getCircuitBreakerStatus(), '__proto__'))
  integrationFailureManager.clearFailures()
  assert.deepEqual(getCooldowns(), {})
})

test('clearFailures clears one name or all cooldowns, and says it held them', async () => {
  const [a, b] = [model(), model()]
  const now = Date.now()
  await native.benchModel(a, 10_000, 'r', now)
  await native.benchModel(b, 10_000, 'r', now)
  assert.equal(integrationFailureManager.clearFailures(a), true, 'a cooldown alone is something held')
  assert.equal(integrationFailureManager.clearFailures(a), false)
  assert.deepEqual(await cooldownsOf([a, b], now), [null, 10_000])
  integrationFailureManager.recordFailure(b, 'op', 'e', 'r')
  assert.equal(integrationFailureManager.clearFailures(), true)
  assert.deepEqual(await cooldownsOf([a, b], now), [null, null])
  assert.deepEqual(getCooldowns(), {})
})

test('a cooldown ends on its own, and is never reported after', async () => {
  const name = model()
  assert.equal(await native.benchModel(name, 30, 'HTTP 429', Date.now()), null)
  assert.ok((await cooldownsOf([name], Date.now()))[0] > 0)
  assert.ok(isRecentDate(getCooldowns()[name].until))
  await sleep(60)
  assert.deepEqual(await cooldownsOf([name], Date.now()), [null])
  assert.equal(getCooldowns()[name], undefined)
  assert.equal(getCircuitBreakerStatus()[name], undefined)
})

test('benchModel and cooldownsOf: bad arguments throw coded errors, a name too long is a problem string', async () => {
  const now = Date.now()
  assertThrowsCoded(assert, () => native.benchModel(1, 10, 'r', now), TypeError, 'ERR_INVALID_ARG_TYPE', /"name"/)
  assertThrowsCoded(assert, () => native.benchModel('m', '10', 'r', now), TypeError, 'ERR_INVALID_ARG_TYPE', /"ms"/)
  assertThrowsCoded(assert, () => native.benchModel('m', 10, undefined, now), TypeError, 'ERR_INVALID_ARG_TYPE', /"reason"/)
  assertThrowsCoded(assert, () => native.benchModel('m', 10, 'r'), TypeError, 'ERR_INVALID_ARG_TYPE', /"now"/)
  // A running cooldown, so cooldownsOf reads its names (with none running anywhere it answers null at once).
  const running = model()
  await native.benchModel(running, 10_000, 'r', now)
  assertThrowsCoded(assert, () => native.cooldownsOf('m', now), TypeError, 'ERR_INVALID_ARG_TYPE', /"names"/)
  assertThrowsCoded(assert, () => native.cooldownsOf(['m', 2], now), TypeError, 'ERR_INVALID_ARG_TYPE', /names\[1\]/)
  assertThrowsCoded(assert, () => native.cooldownStatus('now'), TypeError, 'ERR_INVALID_ARG_TYPE', /"now"/)
  const long = 'm'.repeat(5_000)
  assert.match(await native.benchModel(long, 10_000, 'r', now), /5000 bytes/)
  assert.deepEqual(await cooldownsOf([long], now), [null])
  // A long reason is cut.
  const name = model()
  await native.benchModel(name, 10_000, 'é'.repeat(2_000), now)
  const reason = getCooldowns()[name].reason
  assert.ok(Buffer.byteLength(reason) <= 1024 && reason.startsWith('éé'))
  integrationFailureManager.clearFailures(name)
  integrationFailureManager.clearFailures(running)
})

/** Runs `source` in a new Node.js process with `env` (no preload, no store but the one given); resolves with its JSON output. */
function inProcess(source, env) {
  const clean = { NODE_OPTIONS: '', FALLBACK_MECHANISMS_DB: '', FALLBACK_MECHANISMS_REDIS_URL: '', FALLBACK_MECHANISMS_REDIS_PREFIX: '' }
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', source], { cwd: path.join(__dirname, '..'), timeout: 20_000, env: { ...process.env, ...clean, ...env } },
      (error, out) => (error ? reject(error) : resolve(JSON.parse(out))))
  })
}

/** The environment that points a new process at this one's singletons' store, or null in memory. */
function sameStore() {
  if (process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL) {
    return { FALLBACK_MECHANISMS_REDIS_URL: process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL, FALLBACK_MECHANISMS_REDIS_PREFIX: `suite-${process.pid}-singletons` }
  }
  if (process.env.FALLBACK_MECHANISMS_DB) return { FALLBACK_MECHANISMS_DB: process.env.FALLBACK_MECHANISMS_DB }
  return null
}

test('a model benched by another process sharing the store is benched here', { skip: sameStore() === null && 'the memory backend is one process' }, async () => {
  const name = model()
  const problem = await inProcess(`
    require('.')
    Promise.resolve(require('./lib/native').benchModel(${JSON.stringify(name)}, 60_000, 'HTTP 429 elsewhere', Date.now()))
      .then((problem) => console.log(JSON.stringify(problem)))
  `, sameStore())
  assert.equal(problem, null)
  const [left] = await cooldownsOf([name], Date.now())
  assert.ok(left > 50_000 && left <= 60_000, `left: ${left}`)
  assert.equal(getCooldowns()[name].reason, 'HTTP 429 elsewhere')
  // A chain here skips it up front too (a store another process shares is always asked).
  let called = 0
  const result = await executeWithFallback(async () => { called++ }, { operationName: name, alternatives: [{ name: model(), operation: async () => 'other' }] })
  assert.equal(called, 0)
  assert.deepEqual([result.data, result.metadata.benched], ['other', [name]])
  integrationFailureManager.clearFailures(name)
})

test('with the Redis server away: benchModel and cooldownsOf report it, getCooldowns throws, getCircuitBreakerStatus shows the breakers', async () => {
  const port = await freePort() // nothing listens there
  const seen = await inProcess(`
    const { configure, executeService, getCircuitBreakerStatus, getCooldowns } = require('.')
    const native = require('./lib/native')
    configure({ redisUrl: 'redis://127.0.0.1:${port}', redisTimeoutMs: 200 })
    ;(async () => {
      const benched = await native.benchModel('gpt', 10_000, 'HTTP 429', Date.now())
      const left = await native.cooldownsOf(['gpt'], Date.now())
      let thrown = null
      try { getCooldowns() } catch (error) { thrown = error.code }
      await executeService(async () => { throw new Error('x') }, { operation: 'op', userId: 'u', timestamp: new Date() }, { maxRetries: 0 })
      console.log(JSON.stringify({ benched, left, thrown, status: Object.keys(getCircuitBreakerStatus()) }))
    })()
  `, {})
  assert.equal(typeof seen.benched, 'string')
  assert.equal(typeof seen.left, 'string')
  assert.equal(seen.thrown, 'STORAGE_UNAVAILABLE')
  assert.deepEqual(seen.status, ['op'])
})

const inMemory = () => sameStore() === null

/** Counts the chain's look-ups in the store (lib/chain.js calls `native.cooldownsOf`). */
async function countingLookUps(body) {
  const original = native.cooldownsOf
  let lookUps = 0
  native.cooldownsOf = (...args) => {
    lookUps++
    return original(...args)
  }
  try {
    await body(() => lookUps)
  } finally {
    native.cooldownsOf = original
  }
}

const throttled = () => Object.assign(new Error('slow down'), { status: 429 })

test('a chain looks its models up only while a cooldown may run (memory), always in a shared store', async () => {
  const [primary, other] = [model(), model()]
  const chain = { operationName: primary, alternatives: [{ name: other, operation: async () => 'other' }] }
  integrationFailureManager.clearFailures()
  await countingLookUps(async (lookUps) => {
    assert.equal((await executeWithFallback(async () => 'primary', chain)).data, 'primary')
    assert.equal(lookUps(), inMemory() ? 0 : 1, 'no cooldown runs: no look-up in memory')
    // The primary is throttled: benched; the very next chain sees it.
    assert.equal((await executeWithFallback(async () => { throw throttled() }, chain)).data, 'other')
    const before = lookUps()
    let called = 0
    const result = await executeWithFallback(async () => { called++ }, chain)
    assert.equal(lookUps(), before + 1)
    assert.equal(called, 0)
    assert.deepEqual(result.metadata.benched, [primary])
  })
  integrationFailureManager.clearFailures(primary)
})

test('a model benched in a worker thread is skipped by the next chain on this thread; the worker gone, benching here still works', async () => {
  const primary = model()
  const chain = { operationName: primary, alternatives: [{ name: model(), operation: async () => 'other' }] }
  // This thread has run a chain while no cooldown ran.
  assert.equal((await executeWithFallback(async () => 'primary', chain)).data, 'primary')
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const { executeWithFallback } = require(workerData.root)
    executeWithFallback(async () => { throw Object.assign(new Error('slow down'), { status: 429 }) }, { operationName: workerData.primary, alternatives: [] })
      .then((result) => parentPort.postMessage(result.metadata.fallbackType ?? 'none'))
  `, { eval: true, workerData: { root: path.join(__dirname, '..'), primary } })
  const [answer] = await Promise.all([new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject) }), new Promise((resolve) => worker.once('exit', resolve))])
  assert.equal(answer, 'none')
  let called = 0
  const result = await executeWithFallback(async () => { called++ }, chain)
  assert.equal(called, 0, 'benched in the worker, skipped here')
  assert.equal(result.data, 'other')
  // The worker's environment is gone: a bench published now must not touch it.
  const again = model()
  assert.equal(await native.benchModel(again, 60_000, 'HTTP 429', Date.now()), null)
  assert.equal((await executeWithFallback(async () => 'x', { operationName: again, alternatives: [{ name: model(), operation: async () => 'y' }] })).data, 'y')
  integrationFailureManager.clearFailures(primary)
  integrationFailureManager.clearFailures(again)
})

test('cooldownSlot: one Uint32Array over a SharedArrayBuffer per environment, the same for every caller', async () => {
  const slot = native.cooldownSlot()
  assert.equal(native.cooldownSlot(), slot, 'made once, then the same array')
  assert.ok(slot instanceof Uint32Array, "made in this environment's own realm")
  assert.ok(slot.buffer instanceof SharedArrayBuffer)
  assert.equal(slot.length, 1)
  // Told the current time at once: always ask for a store other processes share.
  if (inMemory()) assert.notEqual(slot[0], 0xffffffff)
  else assert.equal(slot[0], 0xffffffff)
  // A worker thread is another environment: an array of its own.
  const worker = new Worker(`
    const { parentPort } = require('node:worker_threads')
    const native = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native.js'))})
    parentPort.postMessage({ same: native.cooldownSlot() === native.cooldownSlot(), buffer: native.cooldownSlot().buffer })
  `, { eval: true })
  // Listened for from the start: the thread may end before its message is read.
  const exited = new Promise((resolve) => worker.once('exit', resolve))
  const seen = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject) })
  await exited
  assert.equal(seen.same, true)
  assert.ok(seen.buffer instanceof SharedArrayBuffer)
})
