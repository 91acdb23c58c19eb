'use strict'

// Failure classes (README, "Failure classes"): `classify(error)`, the
// built-in classifier (native code reads the error, the core decides:
// src/core/failure_class.rs), and `classOf(error)`, the class the package
// uses: the app's own `configure({ classify })` when it set one, called as
// `classify(error, builtIn)`. Only failures are classified: a call that
// succeeds never comes here.

const native = require('./native')
const { warnOnce } = require('./warnings')

/** The classes, in the order of native code's `FailureClass::ALL`. */
const FAILURE_CLASSES = Object.freeze(['rateLimit', 'overloaded', 'contextWindow', 'contentPolicy', 'auth', 'timeout', 'network', 'other'])
const KNOWN = new Set(FAILURE_CLASSES)

/**
 * The app's classifier, on the thread's global: a module evaluated again
 * (hot reload) classifies as the one `configure` was called on.
 */
const CLASSIFY = Symbol.for('fallback-mechanisms.classify')

/** The key the classifier's warnings are said once under (no operation's name). */
const CLASSIFIER = Symbol('classify')

/**
 * What was classified, by error object, and by which classifier: a
 * failure is classified once however often it is asked.
 */
let classified = new WeakMap()
let classifiedBy

/** The built-in classifier: one of `FAILURE_CLASSES` for any value, never a throw. */
function classify(error) {
  try {
    return FAILURE_CLASSES[native.classifyError(error)] ?? 'other'
  } catch {
    return 'other'
  }
}

/** The class of `error` for the package: the app's classifier's, else the built-in's. */
function classOf(error) {
  if (globalThis[CLASSIFY] !== classifiedBy) {
    classified = new WeakMap()
    classifiedBy = globalThis[CLASSIFY]
  }
  const cacheable = error !== null && (typeof error === 'object' || typeof error === 'function')
  if (cacheable) {
    const known = classified.get(error)
    if (known !== undefined) return known
  }
  const errorClass = configuredClass(error)
  if (cacheable) classified.set(error, errorClass)
  return errorClass
}

function configuredClass(error) {
  const custom = globalThis[CLASSIFY]
  if (typeof custom !== 'function') return classify(error)
  let answer
  try {
    answer = custom(error, classify)
  } catch (thrown) {
    warnOnce(CLASSIFIER, 'threw', `configure({ classify }) threw (${describe(thrown)}); the built-in class was used`, 'FALLBACK_CLASSIFY_FAILED')
    return classify(error)
  }
  if (typeof answer === 'string' && KNOWN.has(answer)) return answer
  warnOnce(CLASSIFIER, 'returned', `configure({ classify }) returned ${describe(answer)}, not a failure class; the built-in class was used`, 'FALLBACK_CLASSIFY_FAILED')
  return classify(error)
}

/** A short description of what the classifier threw or returned; never throws (a revoked Proxy, a hostile getter). */
function describe(value) {
  try {
    if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)
    if (value instanceof Error) return `${String(value.name)}: ${String(value.message)}`
  } catch {
    // Described by its type below.
  }
  return value === null ? 'null' : typeof value
}

function invalidClassify(value) {
  const received = value === null ? 'null' : Array.isArray(value) ? 'an instance of Array' : typeof value === 'object' ? 'an instance of Object' : `type ${typeof value} (${String(value)})`
  const error = new TypeError(`The "options.classify" property must be of type function. Received ${received}`)
  error.code = 'ERR_INVALID_ARG_TYPE'
  return error
}

/** Throws the coded `TypeError` for a `classify` option that is neither a function, `undefined` nor `null`. */
function checkClassify(value) {
  if (value !== undefined && value !== null && typeof value !== 'function') throw invalidClassify(value)
}

/** Uses `custom` from now on (`undefined` or `null`: the built-in). */
function setClassify(custom) {
  globalThis[CLASSIFY] = custom ?? undefined
}

module.exports = { FAILURE_CLASSES, classify, classOf, checkClassify, setClassify }
