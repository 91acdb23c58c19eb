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
  // A Readable is destroyed: its iterator's `return` would wait behind a
  // read in wait, for ever if the source hangs.
  if (kind === 'node') return { next: () => iterator.next(), cancel: () => stream.destroy() }
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

/** A text or byte chunk's size in the answer: a string counts as its UTF-8 encoding. */
function byteSize(chunk) {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk, 'utf8') : chunk.byteLength
}

/** Pieces of text joined into one every so many, so a stream of tiny chunks holds its text, not a string per chunk. */
const PIECES_PER_BLOCK = 1024

/**
 * Collects an answer's text as its chunks come, up to the bound: `text()`
 * is the whole answer, or `undefined` with `problem()` set when it cannot
 * be cached (objects, bytes that are not UTF-8, too long). Bytes are
 * decoded as they come, in the order sent with the strings between them:
 * a string after bytes that end mid-character makes text that is not UTF-8.
 */
function collector() {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  const blocks = []
  let pieces = []
  let bytes = 0
  let chunks = 0
  let problem
  const give = (reason) => {
    problem = reason
    blocks.length = 0
    pieces = []
  }
  return {
    add(chunk) {
      if (problem !== undefined) return
      if (typeof chunk !== 'string' && !isBytes(chunk)) {
        give('the stream gave chunks that are neither strings nor bytes')
        return
      }
      chunks++
      bytes += byteSize(chunk)
      if (bytes > MAX_COLLECTED_BYTES) {
        give(`the streamed answer is longer than 16 MiB (${MAX_COLLECTED_BYTES} bytes)`)
        return
      }
      try {
        pieces.push(typeof chunk === 'string' ? decoder.decode() + chunk : decoder.decode(chunk, { stream: true }))
      } catch {
        give('the streamed bytes are not UTF-8 text')
        return
      }
      if (pieces.length >= PIECES_PER_BLOCK) {
        blocks.push(pieces.join(''))
        pieces = []
      }
    },
    problem: () => problem,
    text() {
      if (problem !== undefined) return undefined
      if (chunks === 0) {
        problem = 'the stream ended without a chunk'
        return undefined
      }
      try {
        pieces.push(decoder.decode())
      } catch {
        give('the streamed bytes are not UTF-8 text')
        return undefined
      }
      return blocks.join('') + pieces.join('')
    },
  }
}

/** What a read gives at the source's end, and once the consumer stopped. */
const ENDED = Object.freeze({ done: true, value: undefined })
const STOPPED = Object.freeze({ done: true, value: undefined })

/**
 * Reads `primed`'s source after its first chunk for one consumer, telling
 * its end apart from a stop. `read()` gives the next chunk, `ENDED` once
 * the source ended (after `ended.completed`, which caches the answer), or
 * `STOPPED` once `stop(reason)` ran: the consumer cancelled, destroyed or
 * returned early. A read in wait ends at once on a stop, whatever the
 * source does then: a source whose pending read ends as "done" when it is
 * cancelled (web streams do) is not taken for a complete answer. The
 * caller's `signal` aborting mid-stream stops the source too, and every
 * read from then on rejects with its reason. `ended` (optional):
 * `completed(text, problem)`, `failed(error)` (not for the caller's own
 * abort), `cancelled()`; at most one of them runs, once.
 */
function relay(primed, ended, signal) {
  const collected = ended === undefined ? undefined : collector()
  if (collected !== undefined) collected.add(primed.first.value)
  let over = false
  let aborted
  // Ends the read in wait. A promise made for each read, not one raced by
  // all of them: every race would leave a reaction on it for the stream's life.
  let interrupt
  const nextChunk = () =>
    new Promise((resolve, reject) => {
      interrupt = resolve
      primed.next().then(resolve, reject)
    })
  const onAbort = () => {
    aborted = { reason: signal.reason }
    stop(signal.reason)
  }
  const detach = () => {
    if (signal !== undefined) signal.removeEventListener('abort', onAbort)
  }
  const tell = (what, ...args) => {
    if (ended === undefined || typeof ended[what] !== 'function') return undefined
    try {
      return ended[what](...args)
    } catch {
      return undefined
    }
  }
  function stop(reason) {
    if (over) return
    over = true
    detach()
    if (interrupt !== undefined) interrupt(STOPPED)
    tell('cancelled')
    cancelQuietly(primed.cancel, reason)
  }
  const afterStop = () => {
    if (aborted !== undefined) throw aborted.reason
    return STOPPED
  }
  async function read() {
    if (over) return afterStop()
    let step
    try {
      step = await nextChunk()
    } catch (error) {
      // The source failed with the caller's own abort: not the model's failure.
      if (!over && signal !== undefined && signal.aborted && error === signal.reason) onAbort()
      if (over) return afterStop()
      over = true
      detach()
      tell('failed', error)
      throw error
    }
    if (over) return afterStop()
    if (step.done) {
      over = true
      detach()
      // Cached before the consumer sees the end (on Redis, once written),
      // so whoever reads to the end can count on it.
      const caching = collected === undefined ? undefined : tell('completed', collected.text(), collected.problem())
      // A promise of the addon's realm (Redis), which `instanceof` misses in a `vm` context.
      if (isPromise(caching)) await caching.catch(() => {})
      return ENDED
    }
    if (collected !== undefined) collected.add(step.value)
    return step
  }
  if (signal !== undefined) {
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  }
  return { read, stop }
}

/**
 * The consumer's stream: the same kind as `primed`'s source, passing its
 * chunks through (see `relay` for `ended` and `signal`). A consumer that
 * cancels a ReadableStream, destroys a Readable, or breaks out of (or
 * returns) an async iterable stops the source at once, also while a chunk
 * is awaited.
 */
function passThrough(primed, ended, signal) {
  const { read, stop } = relay(primed, ended, signal)
  const { kind, first } = primed
  if (kind === 'web') {
    return new ReadableStream({
      start(controller) {
        controller.enqueue(first.value)
      },
      pull(controller) {
        return read().then(
          (step) => {
            if (step === ENDED) controller.close()
            else if (step !== STOPPED) controller.enqueue(step.value)
          },
          (error) => controller.error(error),
        )
      },
      cancel: (reason) => stop(reason),
    })
  }
  const chunks = (async function* () {
    try {
      yield first.value
      for (;;) {
        const step = await read()
        if (step.done) return
        yield step.value
      }
    } finally {
      // Broke out while suspended at a yield: stop the source too (a no-op once it ended).
      stop()
    }
  })()
  // A generator runs `return` and `throw` only once the read it awaits
  // settles: stop first, so that read ends now and the source is let go.
  const { return: close, throw: fail } = chunks
  chunks.return = (value) => {
    stop()
    return close.call(chunks, value)
  }
  chunks.throw = (error) => {
    stop(error)
    return fail.call(chunks, error)
  }
  if (kind === 'iterable') return chunks
  return Readable.from(chunks, { objectMode: primed.objectMode })
}

/**
 * What a chunk held for a slower reader costs against the bound: its text
 * or bytes, and what the heap spends on holding one more (about 230 bytes
 * measured for a 1-byte Uint8Array), so tiny chunks are bounded too.
 */
function heldSize(chunk) {
  const payload = typeof chunk === 'string' || isBytes(chunk) ? byteSize(chunk) : 0
  return payload + 256
}

/** How many passed chunks wait before the log is compacted (amortized O(1) a chunk). */
const COMPACT_FROM = 1024

/**
 * One source read for several callers (`dedupe`). Each `reader()` replays
 * the answer from its first chunk and then follows the source, which is
 * read as fast as the fastest reader asks, at most 16 MiB ahead of the
 * slowest (counted by `heldSize`; then the fastest waits: memory stays
 * bounded). A chunk every reader has passed is let go. The source is
 * stopped once every reader cancelled; `ended` (as for `passThrough`) runs
 * once, for the source. `expect(readers)` says how many readers the call
 * will have in all: until they all exist, nothing is let go or stopped.
 */
function broadcast(primed, ended) {
  const source = relay(primed, ended)
  const log = [primed.first.value]
  // The position in the answer of `log[0]`; `log[0 .. passed)` are let go.
  let base = 0
  let passed = 0
  let held = heldSize(primed.first.value)
  const readers = new Set()
  let made = 0
  let expected
  let finished
  let reading
  let waiting = []
  const wake = () => {
    const woken = waiting
    waiting = []
    for (const resolve of woken) resolve()
  }
  const changed = () => new Promise((resolve) => waiting.push(resolve))
  const letGo = () => {
    if (expected === undefined || made < expected) return
    let slowest = base + log.length
    for (const reader of readers) slowest = Math.min(slowest, reader.at)
    while (base + passed < slowest) {
      held -= heldSize(log[passed])
      log[passed++] = undefined
    }
    if (passed >= COMPACT_FROM && passed * 2 >= log.length) {
      log.splice(0, passed)
      base += passed
      passed = 0
    }
    if (readers.size === 0 && finished === undefined) source.stop()
    wake()
  }
  const readSource = () => {
    reading = source.read().then(
      (step) => {
        if (step.done) finished = { error: undefined }
        else {
          log.push(step.value)
          held += heldSize(step.value)
        }
      },
      (error) => {
        finished = { error }
      },
    )
    reading.finally(() => {
      reading = undefined
      wake()
    })
  }
  return {
    expect(readerCount) {
      expected = readerCount
      letGo()
    },
    reader() {
      // Positions in the answer; 0, the first chunk, goes with the PrimedStream.
      const reader = { at: 1 }
      readers.add(reader)
      made++
      const next = async () => {
        for (;;) {
          if (!readers.has(reader)) return STOPPED
          if (reader.at < base + log.length) {
            const value = log[reader.at - base]
            reader.at++
            letGo()
            return { done: false, value }
          }
          if (finished !== undefined) {
            readers.delete(reader)
            if (finished.error !== undefined) throw finished.error
            return ENDED
          }
          // Ahead of the others by the bound: wait for the slowest.
          if (reading === undefined && held <= MAX_COLLECTED_BYTES) readSource()
          await changed()
        }
      }
      const cancel = () => {
        if (readers.delete(reader)) letGo()
      }
      letGo()
      return new PrimedStream(primed.kind, primed.first, next, cancel, primed.objectMode)
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

module.exports = { primeIfStream, PrimedStream, passThrough, broadcast, replayed, learn, learntShape, cancelQuietly }
