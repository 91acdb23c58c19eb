'use strict'

// Streamed answers (issue #13, item 3): the first chunk decides; after it
// the caller reads a stream of the same kind and the whole answer is
// cached when it completes; a fallback for a streaming call is replayed as
// a stream; an error mid-stream ends the stream, is recorded, caches nothing.
// Tested with the AI SDK's own mock model and simulateReadableStream, and
// with hand-made streams of each kind.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Readable } = require('node:stream')
const { streamText, simulateReadableStream, APICallError } = require('ai')
const { MockLanguageModelV2 } = require('ai/test')
const { executeWithFallback, aiResponseCache, integrationFailureManager } = require('..')
const { MESSAGES, sleep } = require('./helpers')

let n = 0
const unique = (name) => `${name}-${process.pid}-${++n}`

function textModel(deltas, { delayMs = 0, errorAfter } = {}) {
  const chunks = [{ type: 'stream-start', warnings: [] }, { type: 'text-start', id: '1' }]
  for (const delta of deltas) chunks.push({ type: 'text-delta', id: '1', delta })
  if (errorAfter !== undefined) chunks.push({ type: 'error', error: errorAfter })
  else {
    chunks.push({ type: 'text-end', id: '1' })
    chunks.push({ type: 'finish', finishReason: 'stop', usage: { inputTokens: 1, outputTokens: deltas.length, totalTokens: 1 + deltas.length } })
  }
  let calls = 0
  const model = new MockLanguageModelV2({
    doStream: async () => {
      calls++
      return { stream: simulateReadableStream({ chunks, initialDelayInMs: delayMs, chunkDelayInMs: delayMs }) }
    },
  })
  return { model, calls: () => calls }
}

function throttledModel(status = 429, retryAfter = '7') {
  let calls = 0
  const model = new MockLanguageModelV2({
    doStream: async () => {
      calls++
      throw new APICallError({
        message: `status ${status}`,
        url: 'http://model.invalid',
        requestBodyValues: {},
        statusCode: status,
        responseHeaders: { 'retry-after': retryAfter },
        isRetryable: false,
      })
    },
  })
  return { model, calls: () => calls }
}

async function readAll(stream) {
  const chunks = []
  for await (const chunk of stream) chunks.push(chunk)
  return chunks
}

/** A ReadableStream the test feeds chunk by chunk. */
function controlled() {
  let controller
  const stream = new ReadableStream({
    start(c) {
      controller = c
    },
  })
  return { stream, push: (chunk) => controller.enqueue(chunk), end: () => controller.close(), fail: (e) => controller.error(e) }
}

test('the AI SDK textStream is passed through as it arrives and cached when it completes', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'mock' }
  const { model } = textModel(['Hello', ', ', 'world'], { delayMs: 5 })
  const result = await executeWithFallback(async () => streamText({ model, prompt: cacheKey.prompt }).textStream, {
    operationName: unique('chat'),
    cacheKey,
  })
  assert.equal(result.success, true)
  assert.equal(result.metadata, undefined)
  assert.ok(result.data instanceof ReadableStream, 'the same kind as textStream')
  assert.deepEqual(await readAll(result.data), ['Hello', ', ', 'world'])
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'Hello, world')
})

test('chunks reach the caller before the source ends, and nothing is cached until it completes', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const source = controlled()
  const pending = executeWithFallback(async () => source.stream, { operationName: unique('live'), cacheKey })
  let resolved = false
  pending.then(() => (resolved = true))
  await sleep(20)
  assert.equal(resolved, false, 'waits for the first chunk')
  source.push('one ')
  const result = await pending
  const reader = result.data.getReader()
  assert.deepEqual(await reader.read(), { done: false, value: 'one ' })
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null, 'not cached mid-stream')
  source.push('two')
  assert.deepEqual(await reader.read(), { done: false, value: 'two' })
  source.end()
  assert.equal((await reader.read()).done, true)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'one two')
})

test('an error before the first chunk runs the chain: the cached answer comes back as a stream', async () => {
  const operationName = unique('chat')
  const cacheKey = { prompt: unique('prompt'), modelId: 'mock' }
  const good = textModel(['cached ', 'answer'])
  await readAll((await executeWithFallback(async () => streamText({ model: good.model, prompt: 'p' }), { operationName, cacheKey })).data)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'cached answer')

  const failing = throttledModel(503)
  const result = await executeWithFallback(async () => streamText({ model: failing.model, prompt: 'p', maxRetries: 0 }), {
    operationName,
    cacheKey,
  })
  assert.equal(failing.calls(), 1)
  assert.equal(result.success, true)
  assert.equal(result.metadata.fallbackType, 'cache')
  assert.equal(result.message, MESSAGES.cache)
  assert.ok(result.data instanceof ReadableStream)
  assert.equal((await readAll(result.data)).join(''), 'cached answer')
})

test("the AI SDK textStream of a failing model ends empty: that is a failure (STREAM_EMPTY), and the default is streamed", async () => {
  const failing = throttledModel(429)
  const result = await executeWithFallback(
    async () => streamText({ model: failing.model, prompt: 'p', maxRetries: 0, onError: () => {} }).textStream,
    { operationName: unique('chat'), defaultValue: 'The assistant is busy.' },
  )
  assert.equal(result.metadata.fallbackType, 'default')
  assert.ok(result.data instanceof ReadableStream, 'a default for a streaming call is a stream too')
  assert.deepEqual(await readAll(result.data), ['The assistant is busy.'])
})

test('an error mid-stream ends the stream with that error, records the failure and caches nothing', async () => {
  const service = unique('model')
  const cacheKey = { prompt: unique('prompt'), modelId: 'mock' }
  const overloaded = new Error('overloaded mid-answer')
  const { model } = textModel(['Hel'], { errorAfter: overloaded })
  const result = await executeWithFallback(async () => streamText({ model, prompt: 'p' }), {
    operationName: unique('chat'),
    service,
    cacheKey,
  })
  assert.equal(result.success, true, 'the first chunk arrived: the call succeeded')
  const chunks = []
  await assert.rejects(async () => {
    for await (const chunk of result.data) chunks.push(chunk)
  }, (error) => error === overloaded)
  assert.deepEqual(chunks, ['Hel'])
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
  const failures = integrationFailureManager.getFailures(service)
  assert.equal(failures.length, 1)
  assert.equal(failures[0].operation, 'stream')
  assert.equal(failures[0].error, 'overloaded mid-answer')
})

test('each kind comes back as its kind: async generators, Node.js Readables, bytes', async () => {
  const operationName = unique('kinds')
  async function* words() {
    yield 'a'
    yield 'b'
  }
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const fromGenerator = await executeWithFallback(async () => words(), { operationName, cacheKey })
  assert.ok(!(fromGenerator.data instanceof ReadableStream) && typeof fromGenerator.data[Symbol.asyncIterator] === 'function')
  assert.deepEqual(await readAll(fromGenerator.data), ['a', 'b'])
  const replay = await executeWithFallback(async () => Promise.reject(new Error('down')), { operationName, cacheKey })
  assert.equal(replay.metadata.fallbackType, 'cache')
  assert.ok(!(replay.data instanceof ReadableStream) && typeof replay.data[Symbol.asyncIterator] === 'function', 'the shape learnt from the operation')
  assert.deepEqual(await readAll(replay.data), ['ab'])

  const nodeKey = { prompt: unique('prompt'), modelId: 'm' }
  const fromReadable = await executeWithFallback(async () => Readable.from(['x', 'y']), { operationName: unique('node'), cacheKey: nodeKey })
  assert.ok(fromReadable.data instanceof Readable)
  assert.deepEqual(await readAll(fromReadable.data), ['x', 'y'])
  assert.equal(aiResponseCache.get(nodeKey.prompt, nodeKey.modelId).response, 'xy')

  const bytesName = unique('bytes')
  const bytesKey = { prompt: unique('prompt'), modelId: 'm' }
  const encoded = new TextEncoder().encode('héllo')
  const bytes = () =>
    new ReadableStream({
      start(c) {
        c.enqueue(encoded.slice(0, 2))
        c.enqueue(encoded.slice(2))
        c.close()
      },
    })
  const fromBytes = await executeWithFallback(async () => bytes(), { operationName: bytesName, cacheKey: bytesKey })
  assert.equal(Buffer.concat(await readAll(fromBytes.data)).toString(), 'héllo')
  assert.equal(aiResponseCache.get(bytesKey.prompt, bytesKey.modelId).response, 'héllo', 'split UTF-8 is decoded whole')
  const replayBytes = await executeWithFallback(async () => Promise.reject(new Error('down')), { operationName: bytesName, cacheKey: bytesKey })
  const [chunk] = await readAll(replayBytes.data)
  assert.ok(chunk instanceof Uint8Array)
  assert.equal(Buffer.from(chunk).toString(), 'héllo')
})

test('stream: true replays as a ReadableStream even when the operation threw before returning one; stream: false never', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  aiResponseCache.set(cacheKey.prompt, 'kept answer', cacheKey.modelId)
  const streamed = await executeWithFallback(() => { throw new Error('down') }, { operationName: unique('s'), cacheKey, stream: true })
  assert.ok(streamed.data instanceof ReadableStream)
  assert.deepEqual(await readAll(streamed.data), ['kept answer'])
  const plain = await executeWithFallback(async () => { throw new Error('down') }, { operationName: unique('s'), cacheKey, stream: false })
  assert.equal(plain.data, 'kept answer')
  const untold = await executeWithFallback(async () => { throw new Error('down') }, { operationName: unique('s'), cacheKey })
  assert.equal(untold.data, 'kept answer', 'a call never seen streaming gets the answer as it was cached')
})

test('an error before the first chunk is retried, and a first chunk too slow is a timeout', async () => {
  let calls = 0
  const result = await executeWithFallback(
    async () => {
      calls++
      if (calls === 1) return new ReadableStream({ pull: (c) => c.error(new Error('early')) })
      return new ReadableStream({ start: (c) => { c.enqueue('second'); c.close() } })
    },
    { operationName: unique('retry'), retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 1 } },
  )
  assert.equal(calls, 2)
  assert.equal(result.metadata.attempts, 2)
  assert.deepEqual(await readAll(result.data), ['second'])

  let cancelled = false
  const slow = await executeWithFallback(
    async () =>
      new ReadableStream({
        start: () => {},
        cancel: () => {
          cancelled = true
        },
      }),
    { operationName: unique('slow'), timeoutMs: 30, defaultValue: 'late' },
  )
  assert.equal(slow.metadata.fallbackType, 'default')
  assert.deepEqual(await readAll(slow.data), ['late'])
  await sleep(10)
  assert.equal(cancelled, true, 'the stream that timed out is cancelled')
})

test('a caller that stops reading cancels the source, and nothing is cached', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  let cancelled = false
  let i = 0
  const endless = new ReadableStream({
    pull: (c) => c.enqueue(`chunk ${i++} `),
    cancel: () => {
      cancelled = true
    },
  })
  const result = await executeWithFallback(async () => endless, { operationName: unique('endless'), cacheKey })
  for await (const chunk of result.data) if (chunk.startsWith('chunk 3')) break
  assert.equal(cancelled, true)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
})

test('bytes that are not UTF-8 are passed through but not cached, with a coded warning', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    const result = await executeWithFallback(async () => Readable.from([Buffer.from([0xff, 0xfe])], { objectMode: false }), {
      operationName: unique('binary'),
      cacheKey,
    })
    assert.deepEqual(Buffer.concat(await readAll(result.data)), Buffer.from([0xff, 0xfe]))
    await sleep(5)
  } finally {
    process.off('warning', onWarning)
  }
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
  assert.ok(warnings.some((w) => w.code === 'FALLBACK_NOT_CACHED' && /not UTF-8/.test(w.message)))
})

test('dedupe: overlapping streaming calls share one source, and each caller reads the whole answer', async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  let calls = 0
  const operation = async () => {
    calls++
    const words = ['one ', 'two ', 'three']
    return new ReadableStream({
      async pull(c) {
        await sleep(2)
        const word = words.shift()
        if (word === undefined) c.close()
        else c.enqueue(word)
      },
    })
  }
  const options = { operationName: unique('shared'), cacheKey, dedupe: true }
  const [a, b, c] = await Promise.all([1, 2, 3].map(() => executeWithFallback(operation, options)))
  assert.equal(calls, 1)
  assert.notEqual(a.data, b.data, 'a stream of its own for each caller')
  const texts = await Promise.all([a, b, c].map(async (r) => (await readAll(r.data)).join('')))
  assert.deepEqual(texts, ['one two three', 'one two three', 'one two three'])
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId).response, 'one two three')
})

test("the caller's signal aborting mid-stream cancels the source; nothing is cached or recorded", async () => {
  const cacheKey = { prompt: unique('prompt'), modelId: 'm' }
  const service = unique('model')
  let cancelled = false
  const stream = new ReadableStream({
    start(c) {
      c.enqueue('first ')
    },
    cancel() {
      cancelled = true
    },
  })
  const controller = new AbortController()
  const result = await executeWithFallback(async () => stream, { operationName: unique('abort'), service, cacheKey, signal: controller.signal })
  const reader = result.data.getReader()
  assert.deepEqual(await reader.read(), { done: false, value: 'first ' })
  const reading = reader.read()
  controller.abort(new Error('user left'))
  await assert.rejects(reading, /user left/)
  assert.equal(cancelled, true)
  assert.equal(aiResponseCache.get(cacheKey.prompt, cacheKey.modelId), null)
  assert.equal(integrationFailureManager.getFailures(service).length, 0, "the caller's own abort is not the model's failure")
})

test('stream: true gives a stream for a model that answered with plain text too', async () => {
  const result = await executeWithFallback(async () => 'plain text', { operationName: unique('text'), stream: true })
  assert.ok(result.data instanceof ReadableStream)
  assert.deepEqual(await readAll(result.data), ['plain text'])
})
