'use strict'

// Streamed answers (README, "Streaming"). An operation that resolves to a
// ReadableStream, a Node.js Readable or another async iterable is not a
// success until its first chunk arrives: an error before it is a failure
// like any other (retries, alternatives, the cache, ...). After it, the
// caller gets a stream of the same kind that passes chunks through as they
// come, and the whole answer is collected so it can be cached when the
// stream completes. A cached or default answer for a streaming call is
// replayed as a stream of that kind.

const { Readable } = require('node:stream')
const { isPromise } = require('node:util').types
const { codedError } = require('./invoke')

/** The longest answer collected for the cache; a longer one is passed through, not cached. */
const MAX_COLLECTED_BYTES = 16 * 1024 * 1024

/** operationName → the shape of the stream its operation last returned. */
const learnt = new Map()
const MAX_LEARNT = 10_000

/**
 * `'web'` (a ReadableStream), `'node'` (a Readable), `'iterable'` (any other
 * async iterable), `'ai-sdk'` (the AI SDK's `streamText()` result), or
 * `undefined` for a value that is not a stream. Strings and arrays are not
 * async iterable, so plain answers never match.
 */
function streamKind(value) {
  if (value === null || typeof value !== 'object') return undefined
  if (value instanceof ReadableStream) return 'web'
  let iterate
  try {
    // `in` reads no getter: the AI SDK's `textStream` getter would tee the stream.
    if ('fullStream' in value && 'textStream' in value) return 'ai-sdk'
    iterate = value[Symbol.asyncIterator]
  } catch {
    return undefined
  }
  if (typeof iterate !== 'function') return undefined
  return value instanceof Readable ? 'node' : 'iterable'
}

/** A stream whose first chunk has arrived (or that ended without one). */
class PrimedStream {
  constructor(kind, first, next, cancel, objectMode) {
    this.kind = kind
    this.first = first
    this.next = next
    this.cancel = cancel
    this.objectMode = objectMode
  }
}

/**
 * The text of the AI SDK's `streamText()` result, read from its
 * `fullStream`: its `textStream` ends quietly when the model fails, while
 * `fullStream` carries the error (with its status and Retry-After), which
 * is thrown here, before the first chunk or mid-stream.
 */
function textOfParts(result) {
  const fullStream = result.fullStream
  const parts = readerOf(fullStream, fullStream instanceof ReadableStream ? 'web' : 'iterable')
  return {
    async next() {
      for (;;) {
        const read = await parts.next()
        if (read.done) return read
        const part = read.value
        if (part === null || typeof part !== 'object') continue
        if (part.type === 'error') throw part.error
        if (part.type !== 'text-delta') continue
        // `text` since AI SDK 5; `textDelta` before.
        const text = part.text ?? part.textDelta
        if (typeof text === 'string' && text.length > 0) return { done: false, value: text }
      }
    },
    cancel: parts.cancel,
  }
}

/** How to read `stream` chunk by chunk: `next()` and `cancel(reason)`. */
function readerOf(stream, kind) {
  if (kind === 'ai-sdk') return textOfParts(stream)
  if (kind === 'web') {
    const reader = stream.getReader()
    return { next: () => reader.read(), cancel: (reason) => reader.cancel(reason) }
  }
  const iterator = stream[Symbol.asyncIterator]()
  return {
    next: () => iterator.next(),
    cancel: () => (typeof iterator.return === 'function' ? iterator.return() : undefined),
  }
}

/**
 * `value` itself when it is not a stream; else a promise of the stream
 * primed with its first chunk, which rejects when the stream fails before
 * it. `shape(kind)` is told the stream's kind as soon as it is known, so a
 * fallback answer can take the same shape even when no chunk came.
 */
function primeIfStream(value, shape, signal) {
  const source = streamKind(value)
  if (source === undefined) return value
  // The AI SDK's result is answered with a ReadableStream of its text.
  const kind = source === 'ai-sdk' ? 'web' : source
  shape(kind)
  let next
  let cancel
  let objectMode
  try {
    // A locked ReadableStream, a getter or `next` that throws: a stream
    // that fails before its first chunk, never a throw out of here.
    ;({ next, cancel } = readerOf(value, source))
    objectMode = kind === 'node' ? value.readableObjectMode : undefined
    next = rejectsRatherThanThrows(next)
  } catch (thrown) {
    return Promise.reject(thrown)
  }
  // The attempt timed out or the caller aborted while the first chunk was
  // awaited: the stream is cancelled, not left open.
  const stop = () => cancelQuietly(cancel, signal.reason)
  if (signal !== undefined) {
    if (signal.aborted) stop()
    else signal.addEventListener('abort', stop, { once: true })
  }
  const primed = next().then((first) => {
    // A model that said nothing failed (the AI SDK's textStream ends so when the model fails).
    if (first.done) throw codedError('The stream ended before its first chunk', 'STREAM_EMPTY')
    return new PrimedStream(kind, first, next, cancel, objectMode)
  })
  if (signal === undefined) return primed
  const done = () => signal.removeEventListener('abort', stop)
  primed.then(done, done)
  return primed
}

/** `next` as a function that rejects rather than throws. */
function rejectsRatherThanThrows(next) {
  return () => {
    try {
      return Promise.resolve(next())
    } catch (thrown) {
      return Promise.reject(thrown)
    }
  }
}

/** Cancels a source; a source that fails to cancel has nothing more to say. */
function cancelQuietly(cancel, reason) {
  try {
    Promise.resolve(cancel(reason)).catch(() => {})
  } catch {
    // Cancelled already, or a source without a way to cancel.
  }
}

function isBytes(chunk) {
  return chunk instanceof Uint8Array
}

/**
 * Collects an answer's chunks up to the bound: `add` says whether it still
 * collects; `text()` is the whole answer, or `undefined` with `problem()`
 * set when it cannot be cached (objects, bytes that are not UTF-8, too long).
 */
function collector() {
  const parts = []
  let bytes = 0
  let problem
  return {
    add(chunk) {
      if (problem !== undefined) return
      if (typeof chunk === 'string') bytes += chunk.length * 3
      else if (isBytes(chunk)) {
        bytes += chunk.byteLength
      } else {
        problem = 'the stream gave chunks that are neither strings nor bytes'
        parts.length = 0
        return
      }
      if (bytes > MAX_COLLECTED_BYTES) {
        problem = `the streamed answer is longer than ${MAX_COLLECTED_BYTES} bytes`
        parts.length = 0
        return
      }
      parts.push(chunk)
    },
      problem: () => problem,
    text() {
      if (problem !== undefined) return undefined
      if (parts.length === 0) {
        problem = 'the stream ended without a chunk'
        return undefined
      }
      const decoder = new TextDecoder('utf-8', { fatal: true })
      let text = ''
      try {
        for (const part of parts) text += typeof part === 'string' ? part : decoder.decode(part, { stream: true })
        text += decoder.decode()
      } catch {
        problem = 'the streamed bytes are not UTF-8 text'
        return undefined
      }
      return text
    },
  }
}

/**
 * The caller's stream: the same kind as `primed`'s source, passing its
 * chunks through. `ended.completed(text, problem)` runs when the source
 * ends, `ended.failed(error)` when it fails mid-stream (no `ended`: nothing
 * is collected, nothing runs); a consumer that cancels early cancels the
 * source, and neither runs. The caller's `signal` aborting mid-stream
 * cancels the source too, and the stream ends with its reason.
 */
function passThrough(primed, ended, signal) {
  const collected = ended === undefined ? undefined : collector()
  const { kind, first, cancel } = primed
  let next = primed.next
  // The answer is cached before the caller sees the end (on Redis, once the
  // write is done), so whoever reads to the end can count on it.
  const finish = () => {
    if (collected === undefined) return undefined
    const text = collected.text()
    let caching
    try {
      caching = ended.completed(text, collected.problem())
    } catch {
      return undefined
    }
    // A promise of the addon's realm (Redis), which `instanceof` misses in a `vm` context.
    return isPromise(caching) ? caching.catch(() => {}) : undefined
  }
  const failed = (error) => {
    if (ended !== undefined && !(signal !== undefined && signal.aborted && error === signal.reason)) ended.failed(error)
  }
  const add = (chunk) => {
    if (collected !== undefined) collected.add(chunk)
  }
  let stopAborting = () => {}
  let onAbort
  if (signal !== undefined) {
    // Every read races the caller's abort: an abort fails the read in wait.
    const aborted = new Promise((_, reject) => {
      onAbort = () => {
        // Rejected first: cancelling ends the read in wait, which must not win the race.
        reject(signal.reason)
        cancelQuietly(cancel, signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
    })
    aborted.catch(() => {})
    const read = next
    next = () => (signal.aborted ? Promise.reject(signal.reason) : Promise.race([read(), aborted]))
    stopAborting = () => signal.removeEventListener('abort', onAbort)
  }
  if (kind === 'web') {
    return new ReadableStream({
      start(controller) {
        add(first.value)
        controller.enqueue(first.value)
      },
      pull(controller) {
        return next().then(
          (read) => {
            if (read.done) {
              stopAborting()
              const caching = finish()
              if (caching === undefined) controller.close()
              else return caching.then(() => controller.close())
            } else {
              add(read.value)
              controller.enqueue(read.value)
            }
          },
          (error) => {
            stopAborting()
            failed(error)
            controller.error(error)
          },
        )
      },
      cancel: (reason) => {
        stopAborting()
        return cancel(reason)
      },
    })
  }
  const chunks = (async function* () {
    let settled = false
    try {
      let read = first
      while (!read.done) {
        add(read.value)
        yield read.value
        try {
          read = await next()
        } catch (error) {
          settled = true
          failed(error)
          throw error
        }
      }
      settled = true
      await finish()
    } finally {
      stopAborting()
      // The consumer stopped early (break, return): stop the source too.
      if (!settled) cancelQuietly(cancel)
    }
  })()
  if (kind === 'iterable') return chunks
  return Readable.from(chunks, { objectMode: primed.objectMode })
}

/**
 * One source read for several callers (`dedupe`): the source is read to
 * its end as fast as it gives, into a log that every `reader()` replays
 * from the first chunk and then follows. `ended` (as for `passThrough`)
 * runs once, for the source.
 */
function broadcast(primed, ended) {
  const log = [primed.first.value]
  let done = false
  let failure
  let waiting = []
  const wake = () => {
    const woken = waiting
    waiting = []
    for (const resolve of woken) resolve()
  }
  const pump = passThrough(
    { kind: 'iterable', first: primed.first, next: primed.next, cancel: primed.cancel },
    ended,
  )
  ;(async () => {
    try {
      let first = true
      for await (const chunk of pump) {
        if (!first) log.push(chunk)
        first = false
        wake()
      }
    } catch (error) {
      failure = { error }
    }
    done = true
    wake()
  })()
  return {
    reader() {
      let index = 1
      const next = async () => {
        for (;;) {
          if (index < log.length) return { done: false, value: log[index++] }
          if (done) {
            if (failure !== undefined) throw failure.error
            return { done: true, value: undefined }
          }
          await new Promise((resolve) => waiting.push(resolve))
        }
      }
      return new PrimedStream(primed.kind, primed.first, next, () => {}, primed.objectMode)
    },
  }
}

/** How a streaming call's fallback answer is replayed: its kind, and whether its chunks were bytes. */
function replayed(shape, data) {
  const kind = shape.kind
  const chunk = shape.bytes && typeof data === 'string' ? new TextEncoder().encode(data) : data
  if (kind === 'node') {
    // A Readable cannot carry null (it ends the stream): a null default ends
    // it at once. A chunk that is neither text nor bytes needs object mode.
    if (chunk === null) return Readable.from([])
    const binary = typeof chunk === 'string' || chunk instanceof Uint8Array
    return Readable.from([chunk], { objectMode: !shape.bytes || !binary })
  }
  if (kind === 'iterable') {
    return (async function* () {
      yield chunk
    })()
  }
  return new ReadableStream({
    start(controller) {
      controller.enqueue(chunk)
      controller.close()
    },
  })
}

/** Remembers the shape of `operationName`'s streams, for calls that fail before they return one. */
function learn(operationName, shape) {
  if (!learnt.has(operationName) && learnt.size >= MAX_LEARNT) learnt.clear()
  learnt.set(operationName, shape)
}

function learntShape(operationName) {
  return learnt.get(operationName)
}

module.exports = { primeIfStream, PrimedStream, passThrough, broadcast, replayed, learn, learntShape }
