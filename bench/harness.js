'use strict'

// Timing helpers for the benchmark: medians over batches, event-loop delay
// while a scenario runs, and the slowest single call.

const { performance, monitorEventLoopDelay, PerformanceObserver } = require('node:perf_hooks')

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))

/**
 * Runs `fn(i)` in `batches` batches of `ops` calls, yielding to the event
 * loop between batches; returns the median ns per call over the batches.
 */
async function measureSync(fn, { ops, batches, warmup = ops }) {
  for (let i = 0; i < warmup; i++) fn(i)
  const perOp = []
  let i = 0
  for (let b = 0; b < batches; b++) {
    const start = performance.now()
    for (let k = 0; k < ops; k++) fn(i++)
    perOp.push(((performance.now() - start) * 1e6) / ops)
    await yieldToLoop()
  }
  return { nsPerOp: median(perOp) }
}

/**
 * Starts `inFlight` calls of the async `fn(i)` at once and waits for all, in
 * `batches` batches; returns the median ns per call.
 */
async function measureAsync(fn, { inFlight, batches, warmup = 1 }) {
  const batch = async (offset) => {
    const calls = new Array(inFlight)
    for (let k = 0; k < inFlight; k++) calls[k] = fn(offset + k)
    await Promise.all(calls)
  }
  for (let w = 0; w < warmup; w++) await batch(0)
  const perCall = []
  for (let b = 0; b < batches; b++) {
    const start = performance.now()
    await batch(b * inFlight)
    perCall.push(((performance.now() - start) * 1e6) / inFlight)
    await yieldToLoop()
  }
  return { nsPerOp: median(perCall) }
}

/**
 * Like `measureAsync` for several implementations at once, their batches
 * interleaved (A, B, C, A, B, C, ...) so that a noisy neighbour slows all of
 * them alike instead of whichever ran during the noise.
 */
async function compareAsync(implementations, { inFlight, batches, warmup = 2 }) {
  const batch = async (fn, offset) => {
    const calls = new Array(inFlight)
    for (let k = 0; k < inFlight; k++) calls[k] = fn(offset + k)
    await Promise.all(calls)
  }
  for (let w = 0; w < warmup; w++) for (const fn of Object.values(implementations)) await batch(fn, 0)
  return interleaved(implementations, (fn, b) => batch(fn, b * inFlight), { calls: inFlight, batches })
}

/**
 * Runs `runBatch(fn, b)` of each implementation in turn, `batches` rounds,
 * yielding to the event loop after each: the median ns per call (`calls` a
 * batch) of each.
 */
async function interleaved(implementations, runBatch, { calls, batches }) {
  const entries = Object.entries(implementations)
  const perCall = Object.fromEntries(entries.map(([name]) => [name, []]))
  for (let b = 0; b < batches; b++) {
    for (const [name, fn] of entries) {
      const start = performance.now()
      await runBatch(fn, b)
      perCall[name].push(((performance.now() - start) * 1e6) / calls)
      await yieldToLoop()
    }
  }
  return Object.fromEntries(entries.map(([name]) => [name, { nsPerOp: median(perCall[name]) }]))
}

/** `compareAsync` for synchronous functions: `ops` calls a batch. */
async function compareSync(implementations, { ops, batches, warmup = ops }) {
  const entries = Object.entries(implementations)
  for (const [, fn] of entries) for (let i = 0; i < warmup; i++) fn(i)
  const perOp = Object.fromEntries(entries.map(([name]) => [name, []]))
  let i = 0
  for (let b = 0; b < batches; b++) {
    for (const [name, fn] of entries) {
      const start = performance.now()
      for (let k = 0; k < ops; k++) fn(i + k)
      perOp[name].push(((performance.now() - start) * 1e6) / ops)
      await yieldToLoop()
    }
    i += ops
  }
  return Object.fromEntries(entries.map(([name]) => [name, { nsPerOp: median(perOp[name]) }]))
}

/**
 * The event-loop delay (p99, ms, perf_hooks.monitorEventLoopDelay at 1 ms
 * resolution) while `fn(i)` runs once per turn of the loop for `durationMs`,
 * as a server handling one request per turn would call it. An idle loop
 * reads about 1 ms (the timer's own resolution).
 */
async function eventLoopDelayP99(fn, durationMs) {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  const end = performance.now() + durationMs
  let i = 0
  while (performance.now() < end) {
    const result = fn(i++)
    if (result && typeof result.then === 'function') await result
    await yieldToLoop()
  }
  histogram.disable()
  return histogram.percentile(99) / 1e6
}

/**
 * `compareSync` for calls made one after another, each awaited when it
 * returns a promise (a synchronous call against an asynchronous client's
 * round trip): the median ns per call of each implementation, batches
 * interleaved.
 */
async function compareSequential(implementations, { ops, batches, warmup = ops }) {
  const run = async (fn, from) => {
    for (let k = 0; k < ops; k++) {
      const result = fn(from + k)
      if (result && typeof result.then === 'function') await result
    }
  }
  for (let w = 0; w < warmup; w += ops) for (const fn of Object.values(implementations)) await run(fn, w)
  return interleaved(implementations, (fn, b) => run(fn, b * ops), { calls: ops, batches })
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 50))

/**
 * The slowest of `samples` single calls of `fn(i)`, one after another:
 * p99.9 and max (ms), and the max over the calls no garbage-collector
 * pause overlapped (JavaScript's collector, not the call's own work).
 * Run with --expose-gc.
 */
async function slowestCalls(fn, samples) {
  const pauses = []
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push([entry.startTime, entry.startTime + entry.duration])
  })
  observer.observe({ entryTypes: ['gc'] })
  global.gc()
  await pause()
  pauses.length = 0
  const starts = new Float64Array(samples)
  const times = new Float64Array(samples)
  for (let i = 0; i < samples; i++) {
    const start = performance.now()
    fn(i)
    starts[i] = start
    times[i] = performance.now() - start
  }
  await pause()
  observer.disconnect()
  let maxOutsideGc = 0
  for (let i = 0; i < samples; i++) {
    const end = starts[i] + times[i]
    const interrupted = pauses.some(([from, to]) => from < end && to > starts[i])
    if (!interrupted) maxOutsideGc = Math.max(maxOutsideGc, times[i])
  }
  const sorted = Float64Array.from(times).sort()
  return { p999Ms: sorted[Math.floor(samples * 0.999)], maxMs: sorted[samples - 1], maxOutsideGcMs: maxOutsideGc }
}

module.exports = {
  eventLoopDelayP99, measureSync, measureAsync, compareAsync, compareSync, compareSequential, interleaved, slowestCalls, median, yieldToLoop }
