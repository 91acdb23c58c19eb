'use strict'

// How a streamed answer ends (issue #21, findings 1, 2, 4, 5, 6): a
// consumer that stops is never taken for the end of the answer, on every
// source kind; a Node.js Readable source is let go at once; `dedupe`
// gives every caller a stream of its own, replays included, reads its
// source no faster than its readers and stops it when they are all gone;
// what is cached is the answer's bytes in order, counted as bytes.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Readable } = require('node:stream')
const { streamText } = require('ai')
const { MockLanguageModelV2 } = require('ai/test')
const { executeWithFallback, aiResponseCache, integrationFailureManager } = require('..')
const { sleep } = require('./helpers')

let n = 0
const unique = (name) => `${name}-${process.pid}-${++n}`

/** Resolves once `promise` does; fails the test when it has not after `ms` (a bound only a hang reaches). */
async function settlesWithin(promise, ms, what) {
  let timer
  const late = Symbol('late')
  const timedOut = new Promise((resolve) => {
    timer = setTimeout(() => resolve(late), ms)
  })
  const first = await Promise.race([promise, timedOut])
  clearTimeout(timer)
  assert.notEqual(first, late, `${what} did not happen`)
  return first
}

/** A signal that fires once: `fire()` and `fired` (a promise). */
function flag() {
  let fire
  const fired = new Promise((resolve) => {
    fire = resolve
  })
  return { fire, fired }
}

async function readAll(stream) {
  const chunks = []
  for await (const chunk of stream) chunks.push(chunk)
  return chunks
}

/**
 * A source of `kind` that gives `first` and then never another chunk;
 * `cancelled.fired` resolves when it is cancelled, returned or destroyed.
 */
function hangingSource(kind, first) {
  const cancelled = flag()
  if (kind === 'web') {
    const stream = new ReadableStream({
      start: (c) => c.enqueue(first),
      pull: () => new Promise(() => {}),
      cancel: () => cancelled.fire(),
    })
    return { stream, cancelled }
  }
  if (kind === 'node') {
    const stream = new Readable({ read() {} })
    stream.push(first)
    stream.on('close', () => cancelled.fire())
    return { stream, cancelled }
  }
  if (kind === 'iterable') {
    let given = false
    const stream = {
      [Symbol.asyncIterator]() {
        return this
      },
      next() {
        if (given) return new Promise(() => {})
        given = true
        return Promise.resolve({ done: false, value: first })
      },
      return() {
        cancelled.fire()
        return Promise.resolve({ done: true, value: undefined })
      },
    }
    return { stream, cancelled }
  }
  // The AI SDK: a model whose stream says `first` and then nothing.
  const parts = new ReadableStream({
    start(c) {
      c.enqueue({ type: 'stream-start', warnings: [] })
      c.enqueue({ type: 'text-start', id: '1' })
      c.enqueue({ type: 'text-delta', id: '1', delta: first })
    },
    pull: () => new Promise(() => {}),
    cancel: () => cancelled.fire(),
  })
  const model = new MockLanguageModelV2({ doStream: async () => ({ stream: parts }) })
  return { stream: streamText({ model, prompt: 'p' }), cancelled }
}

/** Reads the first chunk of `data` (of its kind), then stops while the next is awaited. */
async function readOneThenStop(data, kind) {
  if (kind === 'node') {
    const [chunk] = await new Promise((resolve) => data.once('data', (c) => resolve([c])))
    data.pause()
    data.read() // a read in wait
    data.destroy()
    return chunk
  }
  if (kind === 'iterable') {
    const iterator = data[Symbol.asyncIterator]()
    const { value } = await iterator.next()
    const pending = iterator.next()
    const returned = iterator.return()
    assert.deepEqual(await pending, { done: true, value: undefined })
    await returned
    return value
  }
  const reader = data.getReader()
  const { value } = await reader.read()
  const pending = reader.read()
  await reader.cancel(new Error('client went away'))
  assert.equal((await pending).done, true)
  return value
}

for (const kind of ['web', 'node', 'iterable', 'ai-sdk']) {
  test(`${kind}: a consumer that stops while a chunk is awaited caches nothing and stops the source`, async () => {
    const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
    aiResponseCache.set(cacheKey.prompt, 'The whole good answer.', cacheKey.modelId)
    const service = unique('model')
    const { stream, cancelled } = hangingSource(kind, 'The ')
    const result = await executeWithFallback(async () => stream, { operationName: unique(`stop-${kind}`), service, cacheKey })
    assert.equal(result.success, true)
    const chunk = await readOneThenStop(result.data, kind === 'ai-sdk' ? 'web' : kind)
    assert.equal(String(chunk), 'The ')
    // The AI SDK does not pass a cancel on to its model's stream.
    if (kind !== 'ai-sdk') await settlesWithin(cancelled.fired, 10_000, 'the source being stopped')
    await sleep(20)
    assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'The whole good answer.')
    assert.equal(integrationFailureManager.getFailures(service).length, 0, 'a stop is not a failure')
  })
}

for (const kind of ['web', 'ai-sdk']) {
  test(`${kind}: the README's route recipe (TextEncoderStream into a Response) keeps a cancelled answer out of the cache`, async () => {
    const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
    aiResponseCache.set(cacheKey.prompt, 'The whole good answer.', cacheKey.modelId)
    const { stream, cancelled } = hangingSource(kind, 'The ')
    const result = await executeWithFallback(async () => stream, { operationName: unique('route'), cacheKey, stream: true })
    const response = new Response(result.data.pipeThrough(new TextEncoderStream()), { headers: { 'content-type': 'text/plain' } })
    const client = response.body.getReader()
    assert.equal(new TextDecoder().decode((await client.read()).value), 'The ')
    const pending = client.read()
    await client.cancel()
    await pending
    if (kind !== 'ai-sdk') await settlesWithin(cancelled.fired, 10_000, 'the source being stopped')
    await sleep(20)
    assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'The whole good answer.')
  })
}

test("a Node.js Readable source is destroyed when the caller's signal aborts while a chunk is awaited", async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const { stream, cancelled } = hangingSource('node', 'first ')
  const controller = new AbortController()
  const result = await executeWithFallback(async () => stream, { operationName: unique('node-abort'), cacheKey, signal: controller.signal })
  const iterator = result.data[Symbol.asyncIterator]()
  assert.equal(String((await iterator.next()).value), 'first ')
  const pending = iterator.next()
  controller.abort(new Error('user left'))
  await assert.rejects(pending, /user left/)
  await settlesWithin(cancelled.fired, 10_000, 'the source being destroyed')
  assert.equal(stream.destroyed, true)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
})

/** A source of `kind` giving `words`, for teaching an operation its shape. */
function finiteSource(kind, words) {
  if (kind === 'node') return Readable.from(words)
  if (kind === 'ai-sdk') {
    const parts = [{ type: 'stream-start', warnings: [] }, { type: 'text-start', id: '1' }]
    for (const delta of words) parts.push({ type: 'text-delta', id: '1', delta })
    parts.push({ type: 'text-end', id: '1' }, { type: 'finish', finishReason: 'stop', usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } })
    const model = new MockLanguageModelV2({ doStream: async () => ({ stream: finiteSource('web', parts) }) })
    return streamText({ model, prompt: 'p' })
  }
  if (kind === 'iterable') {
    return (async function* () {
      yield* words
    })()
  }
  return new ReadableStream({
    start(c) {
      for (const word of words) c.enqueue(word)
      c.close()
    },
  })
}

/** Five overlapping `dedupe` calls of `operation`, each read to its end by its caller. */
async function fiveJoined(operation, options) {
  const results = await Promise.all([1, 2, 3, 4, 5].map(() => executeWithFallback(operation, { ...options, dedupe: true })))
  assert.equal(new Set(results.map((r) => r.data)).size, 5, 'a stream of its own for each caller')
  return Promise.all(results.map(async (r) => ({ type: r.metadata && r.metadata.fallbackType, text: (await readAll(r.data)).join('') })))
}

for (const kind of ['web', 'node', 'iterable', 'ai-sdk']) {
  test(`dedupe: a cached answer replayed as a ${kind} stream is a stream of its own for every joiner`, async () => {
    const operationName = unique(`replay-${kind}`)
    const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
    const taught = await executeWithFallback(async () => finiteSource(kind, ['cached ', 'answer']), { operationName, cacheKey })
    await readAll(taught.data)
    let calls = 0
    const failing = async () => {
      calls++
      await sleep(5)
      throw new Error('down')
    }
    const read = await fiveJoined(failing, { operationName, cacheKey })
    assert.equal(calls, 1)
    assert.deepEqual(read, Array(5).fill({ type: 'cache', text: 'cached answer' }))
  })
}

test('dedupe: a default and a plain-text answer under stream: true are streams of their own for every joiner', async () => {
  const failing = async () => {
    await sleep(5)
    throw new Error('down')
  }
  const defaults = await fiveJoined(failing, { operationName: unique('default'), cacheKey: { prompt: unique('p'), modelId: 'm' }, defaultValue: 'busy', stream: true })
  assert.deepEqual(defaults, Array(5).fill({ type: 'default', text: 'busy' }))
  const text = async () => {
    await sleep(5)
    return 'plain text'
  }
  const plain = await fiveJoined(text, { operationName: unique('text'), cacheKey: { prompt: unique('p'), modelId: 'm' }, stream: true })
  assert.deepEqual(plain, Array(5).fill({ type: undefined, text: 'plain text' }))
})

/** An endless web stream of `size`-character chunks; counts what was pulled, and says when it is cancelled. */
function endless(size) {
  const cancelled = flag()
  const source = { pulled: 0, cancelled }
  source.stream = new ReadableStream(
    {
      async pull(c) {
        await sleep(1)
        c.enqueue(String(source.pulled++ % 10).repeat(size))
      },
      cancel: () => cancelled.fire(),
    },
    { highWaterMark: 0 },
  )
  return source
}

test('dedupe: the source stops when every caller cancelled, and nothing is cached', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const source = endless(10)
  const options = { operationName: unique('all-gone'), cacheKey, dedupe: true }
  const results = await Promise.all([1, 2, 3].map(() => executeWithFallback(async () => source.stream, options)))
  const readers = results.map((r) => r.data.getReader())
  for (const reader of readers) await reader.read()
  await readers[0].cancel()
  await readers[1].read()
  await readers[1].cancel()
  await readers[2].read()
  await sleep(20)
  assert.equal(source.cancelled.fired instanceof Promise, true)
  let stopped = false
  source.cancelled.fired.then(() => {
    stopped = true
  })
  await sleep(5)
  assert.equal(stopped, false, 'one caller still reads: the source goes on')
  await readers[2].cancel()
  await settlesWithin(source.cancelled.fired, 10_000, 'the source being cancelled')
  const pulledThen = source.pulled
  await sleep(50)
  assert.ok(source.pulled <= pulledThen + 1, 'nothing is read after the cancel')
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
})

test('dedupe: the source is read at most 16 MiB ahead of the slowest caller, and no faster than callers read', async () => {
  const MiB = 1024 * 1024
  const source = endless(MiB)
  const options = { operationName: unique('bounded'), cacheKey: { prompt: unique('prompt'), modelId: 'm' }, dedupe: true }
  const [fast, slow] = await Promise.all([1, 2].map(() => executeWithFallback(async () => source.stream, options)))
  const fastReader = fast.data.getReader()
  const slowReader = slow.data.getReader()
  await sleep(50)
  assert.ok(source.pulled <= 3, `nobody read: the source is not read on (${source.pulled} pulled)`)
  // The fast caller reads on while the slow one reads nothing: it gets at most ~16 MiB ahead.
  let got = 0
  let blocked = false
  for (let i = 0; i < 40; i++) {
    const read = fastReader.read()
    const first = await Promise.race([read, sleep(300).then(() => 'waiting')])
    if (first === 'waiting') {
      blocked = true
      // The slow caller leaves: the fast one goes on.
      await slowReader.cancel()
      await read
    }
    got++
    if (blocked) break
  }
  assert.equal(blocked, true, 'the fast caller waited for the slow one')
  assert.ok(got >= 15 && got <= 19, `about 16 MiB ahead, got ${got} chunks of 1 MiB`)
  for (let i = 0; i < 20; i++) await fastReader.read()
  await fastReader.cancel()
  await settlesWithin(source.cancelled.fired, 10_000, 'the source being cancelled')
})

test('a streamed text is counted in UTF-8 bytes: 6 million ASCII characters are cached', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const chunk = 'abcdefghij'.repeat(100_000) // 1 MB
  const result = await executeWithFallback(async () => finiteSource('iterable', Array(6).fill(chunk)), { operationName: unique('long'), cacheKey })
  assert.equal((await readAll(result.data)).length, 6)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response.length, 6_000_000)
})

test('a text over 16 MiB is not cached, and the warning names 16 MiB', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    const chunk = 'é'.repeat(1024 * 1024) // 2 MiB of UTF-8 each
    const result = await executeWithFallback(async () => finiteSource('iterable', Array(9).fill(chunk)), { operationName: unique('too-long'), cacheKey })
    await readAll(result.data)
    await sleep(5)
  } finally {
    process.off('warning', onWarning)
  }
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
  assert.ok(warnings.some((w) => w.code === 'FALLBACK_NOT_CACHED' && /longer than 16 MiB/.test(w.message)))
})

test('byte and string chunks are cached in the order sent', async () => {
  const cases = [
    // A string between the two bytes of "é": not UTF-8 in the order sent.
    { chunks: ['caf', Uint8Array.of(0xc3), 'X', Uint8Array.of(0xa9), ' ok'], cached: null },
    { chunks: ['caf', Uint8Array.of(0xc3), Uint8Array.of(0xa9), ' ok'], cached: 'café ok' },
    { chunks: [Uint8Array.of(0x61), 'b', Uint8Array.of(0x63)], cached: 'abc' },
  ]
  for (const { chunks, cached } of cases) {
    const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
    const result = await executeWithFallback(async () => finiteSource('iterable', chunks), { operationName: unique('mixed'), cacheKey })
    assert.equal((await readAll(result.data)).length, chunks.length)
    const entry = aiResponseCache.get(cacheKey.prompt, cacheKey.modelId)
    assert.equal(entry === null ? null : entry.response, cached)
  }
})

test('dedupe: chunks that are neither text nor bytes are passed through to every caller (not cached)', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const options = { operationName: unique('objects'), cacheKey, dedupe: true }
  const source = () => finiteSource('iterable', [{ a: 1 }, { a: 2 }, { a: 3 }])
  const results = await Promise.all([1, 2].map(() => executeWithFallback(async () => source(), options)))
  for (const result of results) assert.deepEqual(await readAll(result.data), [{ a: 1 }, { a: 2 }, { a: 3 }])
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
})

test('dedupe: a caller that cancels as soon as it asked for a chunk stops the source; a failure after is not recorded', async () => {
  const service = unique('model')
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  aiResponseCache.set(cacheKey.prompt, 'GOOD', cacheKey.modelId)
  let controller
  const stopped = flag()
  const stream = new ReadableStream({
    start(c) {
      controller = c
      c.enqueue('first')
    },
    cancel: () => stopped.fire(),
  })
  const result = await executeWithFallback(async () => stream, { operationName: unique('cancel-early'), service, cacheKey, dedupe: true })
  const reader = result.data.getReader()
  await reader.read()
  const pending = reader.read()
  await Promise.resolve()
  reader.cancel()
  await pending
  await settlesWithin(stopped.fired, 10_000, 'the source being stopped')
  try {
    controller.error(new Error('model failed after the caller cancelled'))
  } catch {
    // Cancelled: the source cannot fail any more.
  }
  await sleep(20)
  assert.equal(integrationFailureManager.getFailures(service).length, 0)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'GOOD')
})

test('dedupe: tiny chunks count against the bound too, and a cancel lets a long log go at once', async () => {
  const source = endless(1)
  const options = { operationName: unique('tiny'), cacheKey: { prompt: unique('prompt'), modelId: 'm' }, dedupe: true }
  const [fast, slow] = await Promise.all([1, 2].map(() => executeWithFallback(async () => source.stream, options)))
  const fastReader = fast.data.getReader()
  const slowReader = slow.data.getReader()
  let count = 0
  let stop = false
  const reading = (async () => {
    while (!stop && count < 100_000) {
      await fastReader.read()
      count++
    }
  })()
  // Until the fast reader stops getting chunks (it waits for the slow one).
  for (let before = -1; before !== count; ) {
    before = count
    await sleep(500)
  }
  // 16 MiB over 1 + 256 counted bytes a chunk: about 65k chunks, not the 100k asked for.
  assert.ok(count < 70_000, `the fast caller read ${count} chunks ahead`)
  assert.ok(source.pulled <= count + 3, `${source.pulled} pulled for ${count} read`)
  const before = count
  await slowReader.cancel()
  await sleep(100)
  stop = true
  assert.ok(count > before, 'the fast caller goes on once the slow one left')
  await fastReader.cancel()
  await reading
  await settlesWithin(source.cancelled.fired, 10_000, 'the source being cancelled')
})
