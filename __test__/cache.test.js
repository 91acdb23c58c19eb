'use strict'

// AIResponseCache (API.md §3, §8): exact keys, TTL, JSON copies, bounds,
// stats, stale-if-error and bad input.

const test = require('node:test')
const assert = require('node:assert/strict')

const { AIResponseCache, aiResponseCache } = require('..')
const { isRecentDate, sleep, assertThrowsCoded } = require('./helpers')

const DAY = 24 * 60 * 60 * 1000

test('set then get returns a CachedAIResponse with real Dates', () => {
  const cache = new AIResponseCache()
  cache.set('prompt', { title: 'T' }, 'model')
  const entry = cache.get('prompt', 'model')
  assert.deepEqual(Object.keys(entry), ['prompt', 'response', 'timestamp', 'modelId', 'expiresAt'])
  assert.equal(entry.prompt, 'prompt')
  assert.equal(entry.modelId, 'model')
  assert.deepEqual(entry.response, { title: 'T' })
  assert.ok(isRecentDate(entry.timestamp))
  assert.ok(entry.expiresAt instanceof Date)
  assert.equal(entry.expiresAt - entry.timestamp, DAY)
})

test('ttl: undefined and 0 mean 24 hours; a given ttl is used as is', () => {
  const cache = new AIResponseCache()
  cache.set('a', 1, 'm', undefined)
  cache.set('b', 1, 'm', 0)
  cache.set('c', 1, 'm', 7 * DAY)
  assert.equal(cache.get('a', 'm').expiresAt - cache.get('a', 'm').timestamp, DAY)
  assert.equal(cache.get('b', 'm').expiresAt - cache.get('b', 'm').timestamp, DAY)
  assert.equal(cache.get('c', 'm').expiresAt - cache.get('c', 'm').timestamp, 7 * DAY)
})

test('the key is the exact (prompt, modelId) pair', () => {
  const cache = new AIResponseCache()
  cache.set('ab', 'first', 'c')
  cache.set('a', 'second', 'bc')
  assert.equal(cache.get('ab', 'c').response, 'first')
  assert.equal(cache.get('a', 'bc').response, 'second')
  assert.equal(cache.get('ab', 'bc'), null)
  assert.equal(cache.get('AB', 'c'), null)
  // Many near-identical prompts never answer for each other.
  for (let i = 0; i < 2000; i++) cache.set(`prompt ${i}`, i, 'm')
  for (let i = 0; i < 2000; i++) assert.equal(cache.get(`prompt ${i}`, 'm').response, i)
})

test('expired entries are not returned and not counted', async () => {
  const cache = new AIResponseCache()
  cache.set('short', 1, 'm', 20)
  cache.set('long', 2, 'm')
  assert.equal(cache.get('short', 'm').response, 1)
  await sleep(40)
  assert.equal(cache.get('short', 'm'), null)
  const stats = cache.getStats()
  assert.equal(stats.size, 1)
  assert.equal(stats.bytes, 'long'.length + '2'.length)
})

test('responses are stored as JSON copies; get returns a fresh copy', () => {
  const cache = new AIResponseCache()
  const response = { list: [1, { deep: true }], when: new Date('2020-01-02T03:04:05.006Z'), skip: undefined, fn() {} }
  cache.set('p', response, 'm')
  response.list.push('mutated after set')
  const first = cache.get('p', 'm').response
  assert.deepEqual(first, { list: [1, { deep: true }], when: '2020-01-02T03:04:05.006Z' })
  first.list[1].deep = false
  assert.deepEqual(cache.get('p', 'm').response.list, [1, { deep: true }])
  assert.notEqual(cache.get('p', 'm').response, cache.get('p', 'm').response)
})

test('JSON data of every kind round-trips', () => {
  const cache = new AIResponseCache()
  const values = [
    null, true, false, 0, -0.5, 1e21, Number.MAX_SAFE_INTEGER, 5e-324, 'text', '',
    'nul\u0000byte', 'astral 😀 𝄞', 'quotes " and \\ and \n newline', [], {}, [[[]]],
    { 'key with spaces': 1, '': 2, '😀': 3 },
  ]
  values.forEach((value, i) => {
    cache.set(`v${i}`, value, 'm')
    assert.deepEqual(cache.get(`v${i}`, 'm').response, value, JSON.stringify(value))
  })
  cache.set('nan', { n: NaN, i: Infinity }, 'm')
  assert.deepEqual(cache.get('nan', 'm').response, { n: null, i: null }, 'as JSON.stringify makes them')
})

test('prompts and model ids round-trip exactly, including NUL and astral characters', () => {
  const cache = new AIResponseCache()
  const prompt = 'a\u0000b 😀 ' + 'é'.repeat(100)
  cache.set(prompt, 1, 'model\u0000x')
  const entry = cache.get(prompt, 'model\u0000x')
  assert.equal(entry.prompt, prompt)
  assert.equal(entry.modelId, 'model\u0000x')
  assert.equal(cache.get(prompt, 'model'), null)
})

test('__proto__ and constructor keys come back as plain own properties', () => {
  const cache = new AIResponseCache()
  const response = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": 1}}')
  cache.set('p', response, 'm')
  const out = cache.get('p', 'm').response
  assert.equal(Object.getPrototypeOf(out), Object.prototype)
  assert.ok(Object.prototype.hasOwnProperty.call(out, '__proto__'))
  assert.deepEqual(out.__proto__, { polluted: true }) // eslint-disable-line no-proto
  assert.equal(out.polluted, undefined)
  assert.equal({}.polluted, undefined)
})

test('values JSON cannot hold are a TypeError that says which, and change nothing', () => {
  const cache = new AIResponseCache()
  cache.set('p', 'kept', 'm')
  const circular = {}
  circular.self = circular
  const cases = [
    [circular, /circular/],
    [{ big: 1n }, /BigInt/],
    [1n, /BigInt/],
    [() => 1, /JSON cannot hold function/],
    [Symbol('s'), /JSON cannot hold type symbol/],
    [undefined, /JSON cannot hold undefined/],
  ]
  for (const [value, message] of cases) {
    assertThrowsCoded(assert, () => cache.set('p', value, 'm'), TypeError, 'ERR_INVALID_ARG_VALUE', message)
  }
  assert.equal(cache.get('p', 'm').response, 'kept')
  assert.equal(cache.getStats().size, 1)
})

test('bad ttl is a RangeError; bad key types a TypeError; state unchanged', () => {
  const cache = new AIResponseCache()
  for (const ttl of [-1, NaN, Infinity, -Infinity]) {
    assertThrowsCoded(assert, () => cache.set('p', 1, 'm', ttl), RangeError, 'ERR_OUT_OF_RANGE', /"ttl"/)
  }
  assertThrowsCoded(assert, () => cache.set('p', 1, 'm', '100'), TypeError, 'ERR_INVALID_ARG_TYPE', /"ttl" argument must be of type number/)
  assertThrowsCoded(assert, () => cache.set(1, 1, 'm'), TypeError, 'ERR_INVALID_ARG_TYPE', /"prompt" argument must be of type string. Received type number \(1\)/)
  assertThrowsCoded(assert, () => cache.set('p', 1), TypeError, 'ERR_INVALID_ARG_TYPE', /"modelId" argument must be of type string. Received undefined/)
  assertThrowsCoded(assert, () => cache.get(null, 'm'), TypeError, 'ERR_INVALID_ARG_TYPE', /"prompt"/)
  assertThrowsCoded(assert, () => cache.delete('p', {}), TypeError, 'ERR_INVALID_ARG_TYPE', /"modelId"/)
  assert.equal(cache.getStats().size, 0)
})

test('least recently used entries go first at maxEntries', () => {
  const cache = new AIResponseCache({ maxEntries: 3 })
  cache.set('a', 1, 'm')
  cache.set('b', 2, 'm')
  cache.set('c', 3, 'm')
  cache.get('a', 'm')
  cache.set('d', 4, 'm')
  assert.equal(cache.get('b', 'm'), null)
  assert.deepEqual(['a', 'c', 'd'].map((k) => cache.get(k, 'm').response), [1, 3, 4])
  const stats = cache.getStats()
  assert.equal(stats.size, 3)
  assert.equal(stats.evictions, 1)
})

test('maxBytes bounds prompt + response bytes; an oversized entry is refused with ENTRY_TOO_LARGE', () => {
  const cache = new AIResponseCache({ maxBytes: 100 })
  cache.set('p1', 'x'.repeat(38), 'm') // 2 + 40 bytes of JSON
  cache.set('p2', 'x'.repeat(38), 'm')
  assert.equal(cache.getStats().bytes, 84)
  cache.set('p3', 'x'.repeat(38), 'm')
  assert.equal(cache.get('p1', 'm'), null)
  assert.equal(cache.getStats().bytes, 84)
  assertThrowsCoded(assert, () => cache.set('huge', 'y'.repeat(200), 'm'), RangeError, 'ENTRY_TOO_LARGE', /bytes/)
  assert.equal(cache.getStats().size, 2, 'the refused entry emptied nothing')
  // UTF-8 bytes, not UTF-16 units
  const wide = new AIResponseCache({ maxBytes: 10 })
  assertThrowsCoded(assert, () => wide.set('😀😀', '😀', 'm'), RangeError, 'ENTRY_TOO_LARGE')
})

test('getStats: size, oldest/newest of live entries, hits, misses, evictions, bytes', async () => {
  const cache = new AIResponseCache({ maxEntries: 2 })
  const empty = cache.getStats()
  assert.deepEqual(empty, { size: 0, hits: 0, misses: 0, evictions: 0, bytes: 0 })
  assert.ok(!('oldestEntry' in empty))
  cache.set('first', 1, 'm')
  await sleep(5)
  cache.set('second', 22, 'm')
  cache.get('first', 'm')
  cache.get('nope', 'm')
  cache.set('third', 3, 'm')
  const stats = cache.getStats()
  assert.equal(stats.size, 2)
  assert.equal(stats.hits, 1)
  assert.equal(stats.misses, 1)
  assert.equal(stats.evictions, 1)
  assert.equal(stats.bytes, 'first'.length + 1 + 'third'.length + 1)
  assert.ok(stats.oldestEntry instanceof Date && stats.newestEntry instanceof Date)
  assert.equal(stats.oldestEntry.getTime(), cache.get('first', 'm').timestamp.getTime())
  assert.equal(stats.newestEntry.getTime(), cache.get('third', 'm').timestamp.getTime())
  cache.clear()
  assert.deepEqual(cache.getStats(), { size: 0, hits: 0, misses: 0, evictions: 0, bytes: 0 })
})

test('delete removes one exact key and reports whether it did', () => {
  const cache = new AIResponseCache()
  cache.set('ab', 1, 'c')
  cache.set('a', 2, 'bc')
  assert.equal(cache.delete('ab', 'c'), true)
  assert.equal(cache.delete('ab', 'c'), false)
  assert.equal(cache.get('a', 'bc').response, 2)
})

test('set on an existing key replaces it', () => {
  const cache = new AIResponseCache()
  cache.set('p', 'old', 'm')
  cache.set('p', 'new!', 'm')
  assert.equal(cache.get('p', 'm').response, 'new!')
  assert.equal(cache.getStats().size, 1)
  assert.equal(cache.getStats().bytes, 1 + 6)
})

test('expired entries never count against live ones', async () => {
  const cache = new AIResponseCache({ maxEntries: 2, staleIfErrorMs: 60_000 })
  cache.set('expiring', 1, 'm', 10)
  cache.set('live', 2, 'm')
  await sleep(25)
  cache.set('new', 3, 'm')
  assert.equal(cache.get('live', 'm').response, 2)
  assert.equal(cache.get('new', 'm').response, 3)
  assert.equal(cache.getStats().size, 2)
})

test('instances are independent of each other and of the singleton', () => {
  const a = new AIResponseCache()
  const b = new AIResponseCache()
  a.set('p', 'a', 'm')
  assert.equal(b.get('p', 'm'), null)
  assert.equal(aiResponseCache.get('p', 'm'), null)
  assert.ok(aiResponseCache instanceof AIResponseCache)
})

test('constructor options are checked: unknown keys, wrong types, out of range', () => {
  assertThrowsCoded(assert, () => new AIResponseCache({ maxEntires: 5 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "options.maxEntires"/)
  assertThrowsCoded(assert, () => new AIResponseCache({ maxEntries: '5' }), TypeError, 'ERR_INVALID_ARG_TYPE', /"options.maxEntries" property must be of type number/)
  assertThrowsCoded(assert, () => new AIResponseCache({ maxEntries: 0 }), RangeError, 'ERR_OUT_OF_RANGE', /"options.maxEntries"/)
  assertThrowsCoded(assert, () => new AIResponseCache({ maxBytes: 1.5 }), RangeError, 'ERR_OUT_OF_RANGE')
  assertThrowsCoded(assert, () => new AIResponseCache({ staleIfErrorMs: -1 }), RangeError, 'ERR_OUT_OF_RANGE')
  assertThrowsCoded(assert, () => new AIResponseCache('big'), TypeError, 'ERR_INVALID_ARG_TYPE', /"options" argument must be of type object/)
  assert.ok(new AIResponseCache({}))
  assert.ok(new AIResponseCache(undefined))
})
