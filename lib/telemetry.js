'use strict'

// The OpenTelemetry bridge (README, "Observability"). Where
// `@opentelemetry/api` resolves (an optional peer dependency, never
// required) and FALLBACK_MECHANISMS_OTEL is not '0', it subscribes to the
// five channels of lib/events.js and records each message as an event on
// the active span and in a few metrics. Nothing here may break a call: every
// handler catches what it throws. An event's `error` is what lib/redact.js
// lets out, never the error's message by default. The spans of
// executeWithFallback are made by lib/spans.js, which makes its call's
// span the active one while the call runs, so these events land on it.

const diagnostics = require('node:diagnostics_channel')
const { singletons } = require('./classes')
const { THROWN } = require('./events')
const { redacted } = require('./redact')

const NAME = 'fallback-mechanisms'

/** `@opentelemetry/api`, or `undefined` when it is absent or turned off. */
function loadApi() {
  if (process.env.FALLBACK_MECHANISMS_OTEL === '0') return undefined
  try {
    return require('@opentelemetry/api')
  } catch {
    return undefined
  }
}

/**
 * A message's fields as span attributes: strings, numbers and booleans;
 * Dates as ISO text; `error` redacted (lib/redact.js).
 */
function attributesOf(message) {
  const attributes = {}
  for (const key of Object.keys(message)) {
    let value = message[key]
    if (key === 'error' && value !== undefined) value = redacted(message[THROWN], value)
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') attributes[key] = value
    else if (value instanceof Date && !Number.isNaN(value.getTime())) attributes[key] = value.toISOString()
  }
  return attributes
}

/** The instruments of the API loaded last, made once (lib/spans.js records in the same). */
let following

/**
 * The instruments, on the meter of the global MeterProvider as it is now.
 * An app may register its provider after this module loaded (the API has
 * no proxy for meters, unlike tracers): each event checks the provider and
 * makes the instruments again on a new one.
 */
function instrumentsOn(api) {
  if (following !== undefined && following.api === api) return following.instruments
  let provider
  let instruments
  const follow = () => {
    const current = api.metrics.getMeterProvider()
    if (current === provider) return instruments
    provider = current
    const meter = current.getMeter(NAME)
    instruments = {
      fallbacks: meter.createCounter('fallback_mechanisms.fallbacks', { description: 'Calls answered by a fallback, by fallback.type' }),
      retries: meter.createCounter('fallback_mechanisms.retries', { description: 'Attempts started after a failed one' }),
      alternatives: meter.createCounter('fallback_mechanisms.alternatives', { description: 'Alternatives tried or passed over, by outcome' }),
      jobs: meter.createCounter('fallback_mechanisms.jobs', { description: 'Job outcomes recorded by the worker, by outcome' }),
      cooldowns: meter.createCounter('fallback_mechanisms.cooldowns', { description: 'Models benched (cooldowns started), by gen_ai.request.model' }),
      // The GenAI semantic conventions' client metric, with their advised buckets.
      duration: meter.createHistogram('gen_ai.client.operation.duration', {
        description: 'GenAI operation duration',
        unit: 's',
        advice: { explicitBucketBoundaries: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] },
      }),
    }
    // Read at collection time only.
    const { aiResponseCache, backgroundJobQueue } = singletons
    const hits = meter.createObservableCounter('fallback_mechanisms.cache.hits', { description: 'aiResponseCache hits in this process' })
    const misses = meter.createObservableCounter('fallback_mechanisms.cache.misses', { description: 'aiResponseCache misses in this process' })
    const depth = meter.createObservableGauge('fallback_mechanisms.queue.depth', { description: 'Pending jobs in backgroundJobQueue' })
    meter.addBatchObservableCallback(
      (result) => {
        // A store that cannot answer (Redis away) is left out of this collection.
        try {
          const stats = aiResponseCache.getStats()
          result.observe(hits, stats.hits)
          result.observe(misses, stats.misses)
        } catch {
          // Not observed this time.
        }
        try {
          result.observe(depth, backgroundJobQueue.getStats().pending)
        } catch {
          // Not observed this time.
        }
      },
      [hits, misses, depth],
    )
    return instruments
  }
  following = { api, instruments: follow }
  return follow
}

/** What each channel adds to the metrics. */
function counted(instruments, channel, message) {
  const operation = { 'operation.name': message.operationName }
  if (channel === 'fallback') instruments.fallbacks.add(1, { 'fallback.type': message.type, ...operation })
  else if (channel === 'retry') instruments.retries.add(1, operation)
  else if (channel === 'alternative') instruments.alternatives.add(1, { outcome: message.outcome, 'alternative.name': message.alternative, ...operation })
  else if (channel === 'job') instruments.jobs.add(1, { outcome: message.type, 'job.type': message.jobType, ...operation })
  else if (channel === 'breaker' && message.type === 'cooldown') instruments.cooldowns.add(1, { 'gen_ai.request.model': message.name, ...operation })
}

/**
 * This context's handler, on its global once the bridge is on here: a
 * module evaluated again (hot reload) starts nothing more, and the handler
 * lives exactly as long as the context.
 */
const STARTED = Symbol.for('fallback-mechanisms.telemetry')

/**
 * Turns the bridge on when the API is there; says whether it is on. The
 * channels are per thread, shared by every `vm` context (Jest and Vitest
 * give each test file one), and a subscriber made here would keep this
 * context alive for as long as it is subscribed. So the native
 * `relayEvent`, which belongs to no context, is subscribed once per thread
 * (`relayEventsTo` says when), and it calls the handler of the newest
 * context still alive, which it holds weakly (src/binding/relay.rs).
 */
function start() {
  if (typeof globalThis[STARTED] === 'function') return true
  const api = loadApi()
  if (api === undefined) return false
  const instruments = instrumentsOn(api)
  try {
    // The observable instruments attach now when a provider is registered already.
    instruments()
  } catch {
    // Retried at the first event.
  }
  const prefix = `${NAME}:`
  const handler = (message, name) => {
    try {
      const channel = String(name).slice(prefix.length)
      const span = api.trace.getActiveSpan()
      if (span !== undefined) span.addEvent(`${NAME}.${channel}`, attributesOf(message))
      counted(instruments(), channel, message)
    } catch {
      // An SDK that throws is not the call's problem.
    }
  }
  globalThis[STARTED] = handler
  const native = require('./native')
  if (native.relayEventsTo(handler)) {
    for (const channel of ['fallback', 'alternative', 'retry', 'breaker', 'job']) diagnostics.subscribe(`${prefix}${channel}`, native.relayEvent)
  }
  return true
}

module.exports = { start, loadApi, instrumentsOn, NAME }
