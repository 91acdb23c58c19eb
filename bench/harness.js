'use strict'

// Timing helpers for the benchmark: medians over batches, event-loop delay
// while a scenario runs, and the slowest single call.

const { performance, monitorEventLoopDelay } = require('node:perf_hooks')

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))

/**
 * Runs `fn(i)` in `batches` batches of `ops` calls, yielding to the event
 * loop between batches; returns the median ns per call over the batches and
 * the event-loop delay p99 (ms) seen meanwhile.
 */
async function measureSync(fn, { ops, batches, warmup = ops }) {
  for (let i = 0; i < warmup; i++) fn(i)
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  const perOp = []
  let i = 0
  for (let b = 0; b < batches; b++) {
    const start = performance.now()
    for (let k = 0; k < ops; k++) fn(i++)
    perOp.push(((performance.now() - start) * 1e6) / ops)
    await yieldToLoop()
  }
  histogram.disable()
  return { nsPerOp: median(perOp), eventLoopP99Ms: histogram.percentile(99) / 1e6 }
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
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  const perCall = []
  for (let b = 0; b < batches; b++) {
    const start = performance.now()
    await batch(b * inFlight)
    perCall.push(((performance.now() - start) * 1e6) / inFlight)
    await yieldToLoop()
  }
  histogram.disable()
  return { nsPerOp: median(perCall), eventLoopP99Ms: histogram.percentile(99) / 1e6 }
}

/** The slowest of `count` single calls of `fn(i)`, in ms. */
function slowestCall(fn, count) {
  let worst = 0
  for (let i = 0; i < count; i++) {
    const start = performance.now()
    fn(i)
    worst = Math.max(worst, performance.now() - start)
  }
  return worst
}

module.exports = { measureSync, measureAsync, slowestCall, median, yieldToLoop }
