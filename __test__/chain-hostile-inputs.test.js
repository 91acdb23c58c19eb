'use strict'

// Hostile inputs against the chain of models, streamed answers, cooldowns
// and events: whatever an operation returns or throws, executeWithFallback
// resolves (§2.4, §8); a model is called as a plain function.

const test = require('node:test')
const assert = require('node:assert/strict')
const { executeWithFallback } = require('..')

let n = 0
const unique = (name) => `${name}-${process.pid}-${++n}`

test('a primary that throws undefined or null: its error is the chain’s, not a COOLING_DOWN nor the alternative’s', async () => {
  for (const thrown of [undefined, null]) {
    for (const alternatives of [[], [{ name: unique('alt'), operation: () => Promise.reject(new Error('alt down')) }]]) {
      const result = await executeWithFallback(() => {
        throw thrown
      }, { operationName: unique('thrown'), alternatives })
      assert.equal(result.success, false)
      assert.equal(result.message, String(thrown))
      assert.notEqual(result.error.code, 'COOLING_DOWN')
      assert.equal(result.metadata.originalError, String(thrown))
    }
  }
})

test('a stream that cannot be read (locked, throwing getReader, next or iterator getter) is a failure, never a rejection', async () => {
  const locked = () => {
    const stream = new ReadableStream({ start: (c) => c.enqueue('a') })
    stream.getReader()
    return stream
  }
  const getReaderThrows = () => {
    const stream = new ReadableStream({ start: (c) => c.enqueue('a') })
    stream.getReader = () => {
      throw new Error('getReader throws')
    }
    return stream
  }
  const nextThrows = () => ({
    [Symbol.asyncIterator]: () => ({
      next() {
        throw new Error('next throws')
      },
    }),
  })
  const getterChanges = () => {
    let reads = 0
    return {
      get [Symbol.asyncIterator]() {
        if (++reads > 1) throw new Error('asyncIterator getter throws')
        return async function* () {
          yield 'a'
        }
      },
    }
  }
  const notAnSdkResult = () => ({ fullStream: 42, textStream: 'x' })
  const fullStreamThrows = () => ({
    get fullStream() {
      throw new Error('fullStream getter throws')
    },
    textStream: null,
  })
  for (const make of [locked, getReaderThrows, nextThrows, getterChanges, notAnSdkResult, fullStreamThrows]) {
    for (const returns of [make, async () => make()]) {
      const result = await executeWithFallback(returns, { operationName: unique(make.name), defaultValue: 'busy' })
      assert.equal(result.success, true, make.name)
      assert.equal(result.metadata.fallbackType, 'default', make.name)
    }
  }
})

/** Runs `source` in a new Node.js process with no preloaded store; resolves with its JSON output. */
function inProcess(source) {
  const path = require('node:path')
  const { execFile } = require('node:child_process')
  const env = { ...process.env, NODE_OPTIONS: '', FALLBACK_MECHANISMS_DB: '', FALLBACK_MECHANISMS_REDIS_URL: '', FALLBACK_MECHANISMS_REDIS_PREFIX: '' }
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--unhandled-rejections=strict', '-e', source], { cwd: path.join(__dirname, '..'), timeout: 30_000, env },
      (error, out) => (error ? reject(error) : resolve(JSON.parse(out))))
  })
}

test('a Redis server that hangs costs a chain of throttled models about two redisTimeoutMs, not one per model', async () => {
  // A server that accepts connections and never answers, as a paused (SIGSTOP) redis-server does.
  const seen = await inProcess(`
    const net = require('node:net')
    const sockets = []
    const server = net.createServer((socket) => sockets.push(socket)).listen(0, '127.0.0.1', async () => {
      const { configure, executeWithFallback } = require('.')
      const warnings = []
      process.on('warning', (warning) => warnings.push(warning.code))
      configure({ redisUrl: 'redis://127.0.0.1:' + server.address().port, redisTimeoutMs: 1000 })
      const throttled = async () => { throw Object.assign(new Error('HTTP 429'), { status: 429 }) }
      const alternatives = Array.from({ length: 6 }, (_, i) => ({ name: 'hanging-' + i, operation: throttled }))
      const started = Date.now()
      const result = await executeWithFallback(throttled, { operationName: 'hanging', alternatives, defaultValue: 'busy' })
      const elapsed = Date.now() - started
      await new Promise((resolve) => setImmediate(resolve))
      console.log(JSON.stringify({ elapsed, data: result.data, type: result.metadata.fallbackType, warnings }))
      for (const socket of sockets) socket.destroy()
      server.close()
      process.exit(0)
    })
  `)
  assert.equal(seen.data, 'busy')
  assert.equal(seen.type, 'default')
  assert.ok(seen.warnings.includes('FALLBACK_STEP_UNAVAILABLE'))
  // The look-up of the cooldowns before the chain, then the fallback's with the benches beside it: 2 s.
  // One round trip per benched model too made it 1 s × 9. The margin between
  // (3 s) is what a loaded machine may add to two waits.
  assert.ok(seen.elapsed < 5000, `elapsed: ${seen.elapsed} ms`)
})

test('alternatives are read once: what was checked is what runs, whatever the getters answer the second time', async () => {
  let nameReads = 0
  let operationReads = 0
  const entry = {
    get name() {
      return ++nameReads === 1 ? 'checked-name' : 42
    },
    get operation() {
      return ++operationReads === 1 ? async () => 'from the alternative' : null
    },
  }
  const warnings = []
  const onWarning = (warning) => warnings.push(warning.message)
  process.on('warning', onWarning)
  try {
    const result = await executeWithFallback(async () => {
      throw new Error('primary down')
    }, { operationName: unique('read-once'), alternatives: [entry] })
    assert.equal(result.success, true)
    assert.equal(result.data, 'from the alternative')
    assert.equal(result.metadata.alternative, 'checked-name')
    assert.equal(nameReads, 1)
    assert.equal(operationReads, 1)
  } finally {
    await new Promise((resolve) => setImmediate(resolve))
    process.off('warning', onWarning)
  }
  assert.deepEqual(warnings, [])
})

test('hostile alternatives arrays are refused with coded errors naming the option', async () => {
  const revocable = Proxy.revocable([], {})
  revocable.revoke()
  const lengths = [1, 1e6]
  const growing = new Proxy([{ name: 'a', operation: async () => 1 }], {
    get: (target, key) => (key === 'length' ? lengths.shift() ?? 1e6 : Reflect.get(target, key)),
  })
  const cases = [
    [revocable.proxy, TypeError, 'ERR_INVALID_ARG_TYPE', /options\.alternatives/],
    [[, { name: 'a', operation: async () => 1 }], TypeError, 'ERR_INVALID_ARG_TYPE', /options\.alternatives\[0\]/],
    [[{ name: 'x'.repeat(4097), operation: async () => 1 }], RangeError, 'ERR_OUT_OF_RANGE', /options\.alternatives\[0\]\.name/],
    [Array.from({ length: 65 }, (_, i) => ({ name: `m${i}`, operation: async () => 1 })), RangeError, 'ERR_OUT_OF_RANGE', /options\.alternatives\.length/],
    [[() => {}], TypeError, 'ERR_INVALID_ARG_TYPE', /options\.alternatives\[0\]/],
  ]
  for (const [alternatives, type, code, message] of cases) {
    let called = false
    await assert.rejects(
      executeWithFallback(() => {
        called = true
      }, { operationName: unique('hostile'), alternatives }),
      (error) => error instanceof type && error.code === code && (message === undefined || message.test(error.message)),
    )
    assert.equal(called, false)
  }
  // A Proxy of an array is an array (Array.isArray), read once: its length as first read.
  const result = await executeWithFallback(async () => {
    throw new Error('primary down')
  }, { operationName: unique('proxy'), alternatives: growing })
  assert.equal(result.data, 1)
})

test('names that differ only in a lone surrogate do not share a cooldown: such a name is neither benched nor looked up', async () => {
  const { getCooldowns } = require('..')
  const tag = unique('surrogate')
  const throttled = async () => {
    throw Object.assign(new Error('HTTP 429'), { status: 429 })
  }
  const first = await executeWithFallback(throttled, {
    operationName: `${tag}-op`,
    service: `${tag}-\uD800`,
    alternatives: [{ name: `${tag}-alt-\uDC00`, operation: async () => 'alt' }],
  })
  assert.equal(first.data, 'alt')
  // Held as UTF-8, `-\uD800` and `-\uDBFF` would both be `-\uFFFD`.
  const second = await executeWithFallback(async () => 'primary', {
    operationName: `${tag}-op`,
    service: `${tag}-\uDBFF`,
    alternatives: [],
  })
  assert.equal(second.data, 'primary')
  assert.equal(second.metadata, undefined)
  assert.ok(!Object.keys(getCooldowns()).some((name) => name.startsWith(tag)))
})

test('a default replayed as a Node.js Readable never fails the read: null ends it at once, an object in bytes mode is an object chunk', async () => {
  const { Readable } = require('node:stream')
  for (const [chunk, defaults] of [['text', [null, 0, { a: 1 }]], [Buffer.from('bytes'), [null, 5, { a: 1 }, 'text']]]) {
    const operationName = unique('readable')
    const first = await executeWithFallback(async () => Readable.from([chunk]), { operationName })
    for await (const _ of first.data);
    for (const defaultValue of defaults) {
      const result = await executeWithFallback(async () => {
        throw new Error('down')
      }, { operationName, defaultValue })
      assert.equal(result.metadata.fallbackType, 'default')
      assert.ok(result.data instanceof Readable)
      const chunks = []
      for await (const read of result.data) chunks.push(read)
      const expected = defaultValue === null ? [] : typeof defaultValue === 'string' ? [Buffer.from(defaultValue)] : [defaultValue]
      assert.deepEqual(chunks.map((read) => (read instanceof Uint8Array ? Buffer.from(read) : read)), expected)
    }
  }
})

test('a cooldown as long as maxCooldownMs allows ends at a valid Date: getCooldowns, the breaker status and the event stay readable', async () => {
  const diagnostics = require('node:diagnostics_channel')
  const { getCooldowns, getCircuitBreakerStatus, integrationFailureManager } = require('..')
  const name = unique('forever')
  const events = []
  const onBreaker = (message) => {
    if (message.name === name) events.push(message)
  }
  diagnostics.subscribe('fallback-mechanisms:breaker', onBreaker)
  try {
    await executeWithFallback(async () => {
      throw Object.assign(new Error('HTTP 429'), { status: 429, retryAfterMs: 1e308 })
    }, { operationName: name, alternatives: [], maxCooldownMs: Number.MAX_SAFE_INTEGER })
    const { until, remainingMs } = getCooldowns()[name]
    assert.ok(!Number.isNaN(until.getTime()), 'until is a valid Date')
    assert.ok(remainingMs > 0 && Number.isSafeInteger(remainingMs))
    assert.ok(!Number.isNaN(getCircuitBreakerStatus()[name].cooldownUntil.getTime()))
    assert.doesNotThrow(() => JSON.stringify(getCooldowns()))
    assert.equal(events.length, 1)
    assert.ok(!Number.isNaN(events[0].until.getTime()))
  } finally {
    diagnostics.unsubscribe('fallback-mechanisms:breaker', onBreaker)
    integrationFailureManager.clearFailures(name)
  }
})

test('a model of a chain without retry is called as a plain function: it never gets the chain’s own entry as `this`', async () => {
  const seen = []
  const model = function () {
    'use strict'
    seen.push(this)
    if (this !== undefined && this !== null) this.name = 'renamed by the model'
    throw new Error('down')
  }
  const last = function () {
    'use strict'
    seen.push(this)
    return 'answer'
  }
  const alternative = unique('alt')
  const result = await executeWithFallback(model, {
    operationName: unique('this'),
    alternatives: [{ name: unique('alt0'), operation: model }, { name: alternative, operation: last }],
  })
  assert.deepEqual(seen, [undefined, undefined, undefined])
  assert.equal(result.metadata.alternative, alternative)
})
