'use strict'

// What of a thrown value goes to OpenTelemetry (README, "Observability"):
// never its message by default, only its name, status and code, since a
// provider's error text may hold a key (`401 Incorrect API key provided:
// sk-proj-...`). `configure({ redact: (message, error) => string })` lets an
// app say what goes instead. The diagnostics_channel messages keep the
// message: their subscribers are the app's own code.

const { messageOf } = require('./events')
const { checkNamed } = require('./guards')
const { checkClassify, setClassify } = require('./classify')

/**
 * The app's `redact`, on the thread's global: a module evaluated again (hot
 * reload) and the bridge subscribed by an earlier evaluation read the same.
 */
const REDACT = Symbol.for('fallback-mechanisms.redact')

/** The longest text `redact` may put on a span; the rest is cut. */
const MAX_REDACTED = 1_000

/**
 * A name or code plain enough to go on spans and metric attributes: an
 * identifier (letters, digits, `_`, `.`) of at most 64 characters. Keys
 * and tokens (`sk-proj-...`, `Bearer:...`) hold other characters.
 */
const TOKEN = /^[A-Za-z0-9_.]{1,64}$/

/** `read()`, or `undefined` when it throws (a hostile getter). */
function quietly(read) {
  try {
    return read()
  } catch {
    return undefined
  }
}

/** The HTTP status `error` carries (`status` or `statusCode`, 100 to 599), or `undefined`. */
function statusOf(error) {
  const status = quietly(() => error.status ?? error.statusCode)
  const number = typeof status === 'string' && /^\d{3}$/.test(status) ? Number(status) : status
  return Number.isInteger(number) && number >= 100 && number <= 599 ? number : undefined
}

function tokenOf(value) {
  return typeof value === 'string' && TOKEN.test(value) ? value : undefined
}

/** The parts of the default text: the error's name, status and code, each when it has one. */
function partsOf(error) {
  if (error === null || (typeof error !== 'object' && typeof error !== 'function')) return { name: typeof error }
  const name = tokenOf(quietly(() => error.name))
  const status = statusOf(error)
  const code = tokenOf(quietly(() => error.code))
  return { name: name ?? 'object', status, code }
}

/** The default text: `'Error 401 invalid_api_key'`, never the message. */
function defaultText(error) {
  const { name, status, code } = partsOf(error)
  let text = name
  if (status !== undefined) text += ` ${status}`
  if (code !== undefined && code !== String(status)) text += ` ${code}`
  return text
}

/**
 * What goes on a span for `error`, thrown with `message` (its message as
 * the contract reads it, `messageOf`): the app's `redact(message, error)`
 * when it returns a string (cut to 1,000 characters), else the default.
 */
function redacted(error, message) {
  const redact = globalThis[REDACT]
  if (typeof redact === 'function') {
    let text
    try {
      text = redact(message === undefined ? messageOf(error) ?? '' : message, error)
    } catch {
      text = undefined
    }
    if (typeof text === 'string') return text.length > MAX_REDACTED ? text.slice(0, MAX_REDACTED) : text
  }
  return defaultText(error)
}

/**
 * The `error.type` of the OpenTelemetry semantic conventions: the HTTP
 * status (`'429'`), `'timeout'` for an attempt that timed out, else the
 * error's code or name, else `'_OTHER'`.
 */
function errorType(error) {
  if (error === null || (typeof error !== 'object' && typeof error !== 'function')) return '_OTHER'
  const { name, status, code } = partsOf(error)
  if (status !== undefined) return String(status)
  if (code === 'TIMEOUT' || name === 'TimeoutError') return 'timeout'
  return code ?? (name === 'object' ? '_OTHER' : name)
}

function invalidRedact(value) {
  const received = value === null ? 'null' : typeof value === 'object' ? 'an instance of Object' : `type ${typeof value}`
  const error = new TypeError(`The "options.redact" property must be of type function. Received ${received}`)
  error.code = 'ERR_INVALID_ARG_TYPE'
  return error
}

/** The options `configure` takes in JavaScript: native code knows no such keys. */
const OWN_OPTIONS = ['breakers', 'limits', 'classify', 'redact']

/**
 * `configure` with `breakers` and `limits` (lib/guards.js), `classify`
 * (lib/classify.js) and `redact` taken out and checked here (the native
 * side knows no such keys): the rest goes to `nativeConfigure`, and what
 * was taken out applies only once that returned, so a call that throws
 * changes nothing. `undefined` or `null` goes back to the default.
 */
function configureWith(nativeConfigure) {
  return function configure(options) {
    let own = []
    try {
      if (options !== null && typeof options === 'object') own = OWN_OPTIONS.filter((key) => Object.prototype.hasOwnProperty.call(options, key))
    } catch {
      // A revoked Proxy: native code words the refusal.
    }
    if (own.length === 0) return configureNatively(nativeConfigure, options)
    // Each read once: what is checked is what applies.
    const given = {}
    for (const key of own) given[key] = options[key]
    if ('redact' in given) {
      const { redact } = given
      if (redact !== undefined && redact !== null && typeof redact !== 'function') throw invalidRedact(redact)
    }
    if ('classify' in given) checkClassify(given.classify)
    const applyNamed = checkNamed(given)
    const rest = { ...options }
    for (const key of own) delete rest[key]
    configureNatively(nativeConfigure, rest)
    if ('redact' in given) globalThis[REDACT] = given.redact ?? undefined
    if ('classify' in given) setClassify(given.classify)
    applyNamed()
    return undefined
  }
}

/** `nativeConfigure(options)`; an unknown top-level key's refusal lists the JavaScript options among the known. */
function configureNatively(nativeConfigure, options) {
  try {
    return nativeConfigure(options)
  } catch (thrown) {
    if (thrown instanceof TypeError && typeof thrown.message === 'string' && /^Unknown option "options\.[^".]+"/.test(thrown.message)) {
      thrown.message = thrown.message.replace(/Known options: (.*)$/, `Known options: $1, ${OWN_OPTIONS.join(', ')}`)
    }
    throw thrown
  }
}

module.exports = { redacted, errorType, configureWith }
