'use strict'

// executeWithFallback checks a plain call's options (lib/plain-call.js) and
// a chain's (lib/chain-options.js) in JavaScript when they are plainly
// right, because the call into native code costs more than the check.
// Native code is the one source of the rules: these tests hold the fast
// checks to it, for every option × a table of valid and invalid values, and
// for random option sets (a seeded run, so a failure can be replayed). A
// fast check may send more to native code than it needs to; it must never
// accept what native code would refuse or run otherwise.

const test = require('node:test')
const assert = require('node:assert')

const native = require('../lib/native')
const { readOptions, plainlyPlain } = require('../lib/plain-call')
const { chainSettings, readOnce, plainlyRight } = require('../lib/chain-options')

const operation = () => 'ok'
const asyncOperation = async () => 'ok'
const long = (unit, n) => unit.repeat(n)

/** Each option of a plain call, and values to try: valid ones first, then those that are off. */
const PLAIN_OPTIONS = {
  operationName: ['op', 'é', long('o', 4096), '', long('o', 4097), '\uD800', 5, null, undefined, {}],
  userId: [undefined, 'u', '', long('u', 5000), 5, null, {}],
  cacheKey: [
    undefined,
    { prompt: 'p', modelId: 'm' },
    { prompt: '', modelId: '' },
    { prompt: '\uD800', modelId: 'm' },
    { prompt: 'p', modelId: long('m', 5000) },
    { prompt: 5, modelId: 'm' },
    { prompt: 'p' },
    { modelId: 'm' },
    Object.assign([], { prompt: 'p', modelId: 'm' }),
    null,
    'p',
  ],
  allowSkip: [undefined, true, false, 'yes', 1, null],
  queueOnFailure: [undefined, { type: 'ai-content', payload: { a: 1 } }, { type: 'nope', payload: {} }, { type: 'notification', priority: 'high', payload: 1 }, null, 'x'],
  defaultValue: [undefined, 'd', 0, '', false, null, { a: 1 }],
  service: [undefined, 's', '', 5, null],
  skipThreshold: [undefined, 3, 0, -1, 1.5, NaN, 'x', null],
  retry: [undefined, {}, { maxRetries: 1, baseDelayMs: 1 }, { maxRetries: -1 }, { jitter: 'sometimes' }, null, 5],
  timeoutMs: [undefined, 100, 0, -1, 1.5, 'x', null],
  signal: [undefined, new AbortController().signal, {}, null],
  dedupe: [undefined, true, false, 'yes', null],
}

/** The chain's options, and values to try. */
const CHAIN_OPTIONS = {
  alternatives: [
    undefined,
    [],
    [{ name: 'b', operation }],
    [{ name: 'b', operation, on: ['rateLimit', 'timeout'] }],
    [{ name: 'b', operation, on: [] }],
    [{ name: long('é', 1365), operation }],
    [{ name: long('😀', 683), operation }],
    [{ name: long('n', 4096), operation }],
    [{ name: long('n', 4097), operation }],
    [{ name: '', operation }],
    [{ name: 'b' }],
    [{ name: 5, operation }],
    [{ name: 'b', operation, on: ['nope'] }],
    [{ name: 'b', operation, on: 'rateLimit' }],
    [{ name: 'b', operation, on: Array(65).fill('rateLimit') }],
    [null],
    ['b'],
    Array.from({ length: 64 }, (_, i) => ({ name: `m${i}`, operation })),
    Array.from({ length: 65 }, (_, i) => ({ name: `m${i}`, operation })),
    'b',
    {},
    null,
  ],
  alternativesOn: [undefined, () => true, async () => false, 'x', null],
  cooldownMs: [undefined, 0, 1000, Number.MAX_SAFE_INTEGER, -1, 1.5, 2 ** 53, 'x', null],
  maxCooldownMs: [undefined, 0, 60_000, -5, Infinity, 'x', null],
  stream: [undefined, true, false, 'x', 1, null],
}

/** How native code takes a plain call's options: `null` (plain), another answer, or the coded error. */
function nativeStart(op, options) {
  try {
    const start = native.startFallbackCall(op, options, readOptions(options))
    return start === null ? 'plain' : 'not plain'
  } catch (error) {
    assert.ok(error.code, `a coded error: ${error.message}`)
    return `refused: ${error.code}`
  }
}

/** Whether the fast check takes `options` as a plain call; when it does, native code must agree. */
function checkPlain(op, options, label) {
  const read = readOptions(options)
  if (!plainlyPlain(op, options, read)) return false
  assert.equal(nativeStart(op, options), 'plain', `${label}: plainly plain for lib/plain-call.js, not for native code`)
  return true
}

/** Whether the fast check takes the chain's options; when it does, native code must give the same settings. */
function checkChain(options, label) {
  const read = readOptions(options)
  const models = read.alternatives === undefined ? undefined : readOnce(read.alternatives)
  const fast = chainSettings(read)
  const modelsRight = models === undefined || (models !== read.alternatives && plainlyRight(models))
  if (fast === undefined || !modelsRight) return false
  let settings
  try {
    settings = native.checkChain(models, read.alternativesOn, read.cooldownMs, read.maxCooldownMs, read.stream)
  } catch (error) {
    assert.fail(`${label}: plainly right for lib/chain-options.js, refused by native code: ${error.message}`)
  }
  assert.deepStrictEqual({ ...settings }, fast, `${label}: the settings differ`)
  return true
}

function describe(key, value) {
  if (typeof value === 'string' && value.length > 20) return `${key}: '${value.slice(0, 3)}…' (${value.length} units)`
  if (Array.isArray(value) && value.length > 4) return `${key}: an array of ${value.length}`
  try {
    return `${key}: ${JSON.stringify(value) ?? String(value)}`
  } catch {
    return `${key}: ${String(value)}`
  }
}

test('every plain-call option × each value: the fast check never takes what native code refuses or runs otherwise', () => {
  let taken = 0
  let tried = 0
  for (const op of [operation, asyncOperation, 'not a function', null]) {
    for (const [key, values] of Object.entries(PLAIN_OPTIONS)) {
      for (const value of values) {
        const options = { operationName: 'op', [key]: value }
        tried++
        if (checkPlain(op, options, `${typeof op} operation, ${describe(key, value)}`)) taken++
      }
    }
  }
  // Not vacuous: the fast path takes many, and sends the rest on.
  assert.ok(taken >= 40 && taken < tried, `${taken} of ${tried} taken by the fast check`)
})

test('every chain option × each value: the fast check gives native code\'s settings or leaves it to native code', () => {
  let taken = 0
  let tried = 0
  for (const [key, values] of Object.entries(CHAIN_OPTIONS)) {
    for (const value of values) {
      tried++
      if (checkChain({ operationName: 'op', [key]: value }, describe(key, value))) taken++
    }
  }
  assert.ok(taken >= 15 && taken < tried, `${taken} of ${tried} taken by the fast check`)
})

test('options objects that are not plain: arrays, null prototypes, class instances, getters', () => {
  const withGetter = { get operationName() { return 'op' } }
  class Options {
    constructor() {
      this.operationName = 'op'
    }
  }
  const cases = [Object.assign([], { operationName: 'op' }), Object.assign(Object.create(null), { operationName: 'op' }), new Options(), withGetter]
  for (const options of cases) checkPlain(operation, options, `options ${Object.prototype.toString.call(options)}`)
})

/** A small seeded generator (mulberry32), so a failing run can be replayed from its seed. */
function random(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

test('random option sets (seeded): the fast checks agree with native code', () => {
  const seed = Number(process.env.OPTION_CHECKS_SEED) || 20261207
  const next = random(seed)
  const pick = (values) => values[Math.floor(next() * values.length)]
  const all = { ...PLAIN_OPTIONS, ...CHAIN_OPTIONS }
  const keys = Object.keys(all)
  let plainTaken = 0
  let chainTaken = 0
  for (let run = 0; run < 3000; run++) {
    const options = {}
    for (const key of keys) {
      // Mostly valid values, so that the fast paths are reached often.
      if (next() < 0.35) options[key] = next() < 0.7 ? all[key][Math.floor(next() * Math.min(3, all[key].length))] : pick(all[key])
    }
    if (!('operationName' in options) || next() < 0.8) options.operationName = 'op'
    const label = `seed ${seed}, run ${run}: { ${Object.entries(options).map(([k, v]) => describe(k, v)).join(', ')} }`
    if (checkPlain(operation, options, label)) plainTaken++
    if (checkChain(options, label)) chainTaken++
  }
  assert.ok(plainTaken > 100 && chainTaken > 100, `${plainTaken} plain and ${chainTaken} chain option sets taken by the fast checks`)
})

test('the chain bounds come from native code', () => {
  const bounds = native.chainBounds()
  assert.deepStrictEqual({ ...bounds }, { maxAlternatives: 64, maxOnClasses: 64, maxPlainNameUnits: 1365 })
  const atBound = Array.from({ length: bounds.maxAlternatives }, (_, i) => ({ name: `m${i}`, operation }))
  assert.ok(plainlyRight(readOnce(atBound)))
  const over = [...atBound, { name: 'one more', operation }]
  assert.strictEqual(readOnce(over), over, 'left as given, for native code to refuse')
  assert.throws(() => native.checkChain(over), { code: 'ERR_OUT_OF_RANGE' })
})
