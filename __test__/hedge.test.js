'use strict'

// Hedging (README, "Hedging"): the next alternative starts beside a slow
// model; the first to answer wins, the other is cancelled through its
// signal.

const test = require('node:test')
const assert = require('node:assert/strict')
const { executeWithFallback } = require('..')

let next = 0
const unique = (name) => `${name}-${process.pid}-${++next}`

/** A model answering `value` after `ms` (or failing with `error`), counting its calls and aborts. */
function model(ms, value, error) {
  const fake = { calls: 0, aborted: 0 }
  fake.operation = (signal) => {
    fake.calls++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (error ? reject(error) : resolve(value)), ms)
      signal?.addEventListener('abort', () => {
        fake.aborted++
        clearTimeout(timer)
        reject(signal.reason)
      })
    })
  }
  return fake
}

test('a slow model is hedged: the alternative answers first, the slow one is cancelled', async () => {
  const slow = model(2_000, 'slow')
  const fast = model(10, 'fast')
  const result = await executeWithFallback(slow.operation, { operationName: unique('op'), alternatives: [{ name: 'fast', operation: fast.operation }], hedge: { afterMs: 30 } })
  assert.equal(result.data, 'fast')
  assert.equal(result.metadata.hedged, true)
  assert.equal(result.metadata.alternative, 'fast')
  assert.equal(slow.aborted, 1, 'the slow call got its abort')
})

test('a model that answers within afterMs is not hedged', async () => {
  const quick = model(1, 'quick')
  const spare = model(1, 'spare')
  const result = await executeWithFallback(quick.operation, { operationName: unique('op'), alternatives: [{ name: 'spare', operation: spare.operation }], hedge: { afterMs: 5_000 } })
  assert.equal(result.data, 'quick')
  assert.equal(result.metadata, undefined)
  assert.equal(spare.calls, 0)
})

test('the first to answer wins: a hedged primary that answers first keeps its answer', async () => {
  const primary = model(60, 'primary')
  const hedge = model(5_000, 'hedge')
  const result = await executeWithFallback(primary.operation, { operationName: unique('op'), alternatives: [{ name: 'h', operation: hedge.operation }], hedge: { afterMs: 20 } })
  assert.equal(result.data, 'primary')
  assert.equal(hedge.calls, 1)
  assert.equal(hedge.aborted, 1)
})

test('both failing: the chain goes on past the hedge, then falls back', async () => {
  const a = model(40, undefined, new Error('a down'))
  const b = model(80, undefined, new Error('b down'))
  const c = model(1, 'c')
  const result = await executeWithFallback(a.operation, { operationName: unique('op'), alternatives: [{ name: 'b', operation: b.operation }, { name: 'c', operation: c.operation }], hedge: { afterMs: 10 } })
  assert.equal(result.data, 'c')
  assert.equal(result.metadata.hedged, undefined)
  assert.deepEqual([a.calls, b.calls, c.calls], [1, 1, 1], 'b was called once, as the hedge')
  const none = await executeWithFallback(model(30, undefined, new Error('x')).operation, { operationName: unique('op'), alternatives: [{ name: 'b', operation: model(60, undefined, new Error('y')).operation }], hedge: { afterMs: 10 }, defaultValue: 'safe' })
  assert.equal(none.data, 'safe')
})

test('maxPerMinute caps the extra calls; p95 waits for the samples', async () => {
  const spare = model(1, 'spare')
  const capped = await executeWithFallback(model(60, 'slow').operation, { operationName: unique('op'), alternatives: [{ name: 's', operation: spare.operation }], hedge: { afterMs: 1, maxPerMinute: 0 } })
  assert.equal(capped.data, 'slow')
  assert.equal(spare.calls, 0)
  const name = unique('p95')
  const options = { operationName: unique('op'), service: name, alternatives: [{ name: 's', operation: spare.operation }], hedge: { afterMs: 'p95' } }
  for (let i = 0; i < 20; i++) assert.equal((await executeWithFallback(model(1, 'fast').operation, options)).data, 'fast')
  assert.equal(spare.calls, 0, 'no p95 before 20 answers were timed')
  const hedged = await executeWithFallback(model(3_000, 'slow').operation, options)
  assert.equal(hedged.data, 'spare')
  assert.equal(hedged.metadata.hedged, true)
})

test('bad hedge options are refused with a coded error naming the option', async () => {
  for (const [hedge, type, code, path] of [
    [5, TypeError, 'ERR_INVALID_ARG_TYPE', 'options.hedge'],
    [{ afterMs: 'p99' }, TypeError, 'ERR_INVALID_ARG_TYPE', 'options.hedge.afterMs'],
    [{ afterMs: -1 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.hedge.afterMs'],
    [{ afterMs: 1, maxPerMinute: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.hedge.maxPerMinute'],
  ]) {
    await assert.rejects(executeWithFallback(async () => 1, { operationName: unique('op'), hedge }), (error) => error instanceof type && error.code === code && error.message.includes(`"${path}"`))
  }
})
