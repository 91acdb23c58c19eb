'use strict'

// The spans of executeWithFallback (README, "Observability"), following the
// OpenTelemetry GenAI semantic conventions: one INTERNAL span per call,
// `fallback <operationName>`, and under it one CLIENT span per model
// attempt (retries and alternatives included), `chat <model>`, each ended
// on every path, a streamed answer's when the stream ends. Each attempt's
// duration goes to `gen_ai.client.operation.duration`.
//
// Only where `@opentelemetry/api` resolves and FALLBACK_MECHANISMS_OTEL is
// not '0' (`tracing`): lib/execute.js checks it once per call and takes
// none of these paths otherwise. Nothing here may break a call: every SDK
// call is guarded. Nothing here holds a span past its call's objects: a
// span that never ends (a stream nobody reads) goes with them.

const { performance } = require('node:perf_hooks')
const { loadApi, instrumentsOn, NAME } = require('./telemetry')
const { redacted, errorType } = require('./redact')
const { PrimedStream } = require('./streams')
const { classOf } = require('./classify')

const api = loadApi()
const tracing = api !== undefined
const VERSION = tracing ? require('../package.json').version : undefined
/**
 * The tracer of the provider registered now, asked for at each call: a
 * provider registered later (also through another copy of the API, or
 * after `trace.disable()`) is used from then on, and a provider whose
 * `getTracer` throws costs that call its span, never the package's load.
 */
function tracer() {
  return api.trace.getTracer(NAME, VERSION)
}

/** `gen_ai.operation.name` of every attempt: the conventions' name for a chat or text completion. */
const OPERATION = 'chat'

/** Ends `span` with an error status: `error.type` and the redacted text, never the message. */
function failSpan(span, error) {
  span.setAttribute('error.type', errorType(error))
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: redacted(error) })
}

/** The class of the API's no-op histogram: the duration goes nowhere while it is this. */
const NOOP_HISTOGRAM = tracing && typeof api.createNoopMeter === 'function' ? api.createNoopMeter().createHistogram(NAME).constructor : undefined

/** Whether a MeterProvider is registered: `gen_ai.client.operation.duration` is recorded somewhere. */
function metered() {
  return instrumentsOn(api)().duration.constructor !== NOOP_HISTOGRAM
}

/** The API's no-op TracerProvider, what the global one delegates to while none is registered. */
const NOOP_TRACER_PROVIDER = tracing && typeof api.ProxyTracerProvider === 'function' ? new api.ProxyTracerProvider().getDelegate() : undefined

/** Whether a TracerProvider is registered. */
function traceable() {
  const provider = api.trace.getTracerProvider()
  return typeof provider.getDelegate !== 'function' || provider.getDelegate() !== NOOP_TRACER_PROVIDER
}

/**
 * Starts the span of a call named `operationName`: its trace (the span,
 * the context that has it active, the attempts made), or `undefined` when
 * nothing would record it (no TracerProvider, or the sampler said no, and
 * no MeterProvider: the call runs as without the API) or the SDK throws.
 */
function callStarted(operationName) {
  try {
    if (!traceable() && !metered()) return undefined
    const span = tracer().startSpan(`fallback ${operationName}`, { kind: api.SpanKind.INTERNAL, attributes: { 'operation.name': operationName } })
    if (!span.isRecording() && !metered()) return undefined
    return { span, context: api.trace.setSpan(api.context.active(), span), attempts: 0, streaming: undefined, joined: false }
  } catch {
    return undefined
  }
}

/**
 * `fn(...args)` with `trace`'s span (a call's or an attempt's) active. A
 * context manager that throws is not the call's problem: `fn` runs once
 * all the same, and what it returned or threw is what comes out.
 */
function within(trace, fn, ...args) {
  let ran = false
  let outcome
  const run = () => {
    ran = true
    try {
      outcome = { value: fn(...args) }
    } catch (thrown) {
      outcome = { thrown }
    }
    return outcome.value
  }
  try {
    api.context.with(trace.context, run)
  } catch {
    // Ran without the context, below.
  }
  if (!ran) run()
  if ('thrown' in outcome) throw outcome.thrown
  return outcome.value
}

/** Ends the call's span when its promise settles: `result` is what it resolved with. */
function callEnded(trace, result) {
  try {
    const { span } = trace
    span.setAttribute('fallback.attempts', trace.attempts)
    if (trace.joined) span.setAttribute('fallback.joined', true)
    const metadata = result !== null && typeof result === 'object' ? result.metadata : undefined
    if (metadata !== undefined) {
      if (metadata.fallbackType !== undefined) span.setAttribute('fallback.type', metadata.fallbackType)
      if (metadata.alternative !== undefined) span.setAttribute('fallback.alternative', metadata.alternative)
      if (Array.isArray(metadata.benched) && metadata.benched.length > 0) span.setAttribute('fallback.benched', metadata.benched.slice())
      if (metadata.errorClass !== undefined) span.setAttribute('fallback.error.class', metadata.errorClass)
    }
    if (result !== null && typeof result === 'object' && result.success === false) failSpan(span, result.error)
    span.end()
  } catch {
    // An SDK that throws is not the call's problem.
  }
}

/** Ends the call's span when its promise rejected (bad options, the caller's signal). */
function callRejected(trace, error) {
  try {
    trace.span.setAttribute('fallback.attempts', trace.attempts)
    failSpan(trace.span, error)
    trace.span.end()
  } catch {
    // Not the call's problem.
  }
}

/** Starts attempt `n` of `model` under the call's span, or `undefined` when the SDK throws. */
function attemptStarted(trace, model, n) {
  try {
    const attributes = { 'gen_ai.operation.name': OPERATION, 'gen_ai.request.model': model, 'fallback.attempt': n }
    const span = tracer().startSpan(`${OPERATION} ${model}`, { kind: api.SpanKind.CLIENT, attributes }, trace.context)
    trace.attempts += 1
    return { span, context: api.trace.setSpan(trace.context, span), model, started: performance.now(), ended: false }
  } catch {
    return undefined
  }
}

/**
 * Ends an attempt's span, once: a failure when `failed` (with `error`),
 * else a success; `attributes` are added first. Records its duration.
 */
function attemptEnded(attempt, failed, error, attributes) {
  if (attempt === undefined || attempt.ended) return
  attempt.ended = true
  try {
    const { span } = attempt
    const measured = { 'gen_ai.operation.name': OPERATION, 'gen_ai.request.model': attempt.model }
    if (attributes !== undefined) span.setAttributes(attributes)
    if (failed) {
      failSpan(span, error)
      span.setAttribute('fallback.error.class', classOf(error))
      measured['error.type'] = errorType(error)
    }
    span.end()
    instrumentsOn(api)().duration.record((performance.now() - attempt.started) / 1000, measured)
  } catch {
    // Not the call's problem.
  }
}

/**
 * `operation` (which primes a stream it returns) with a span for each
 * attempt of `model`: started when it is called, the operation run with
 * it active, ended when it settles, or as soon as the attempt's signal
 * aborts (a timeout, the caller's signal), whatever the operation does
 * then. A streamed answer's span is left open for `streamed` in
 * lib/execute.js (`trace.streaming`), which ends it with the stream.
 */
function attempting(trace, model, operation) {
  let n = 0
  return (...args) => {
    n += 1
    const attempt = attemptStarted(trace, model, n)
    if (attempt === undefined) return operation(...args)
    const signal = args[0]
    let stop
    if (signal instanceof AbortSignal) {
      const onAbort = () => attemptEnded(attempt, true, signal.reason)
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
      stop = () => signal.removeEventListener('abort', onAbort)
    }
    return within(attempt, operation, ...args).then(
      (value) => {
        if (stop !== undefined) stop()
        if (!(value instanceof PrimedStream)) attemptEnded(attempt, false)
        else if (!attempt.ended) trace.streaming = attempt
        return value
      },
      (error) => {
        if (stop !== undefined) stop()
        attemptEnded(attempt, true, error)
        throw error
      },
    )
  }
}

/** The span of the attempt whose streamed answer the call returns, taken once. */
function streamingAttempt(trace) {
  if (trace === undefined) return undefined
  const attempt = trace.streaming
  trace.streaming = undefined
  return attempt
}

module.exports = { tracing, callStarted, within, callEnded, callRejected, attempting, attemptEnded, streamingAttempt }
