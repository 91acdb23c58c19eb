'use strict'

// The options of a call with a chain of models (`alternatives` and their `on`,
// `alternativesOn`, `cooldownMs`, `maxCooldownMs`, `stream`): read once and
// checked here when plainly right, because a call into native code costs
// more than the check; anything off goes to native `checkChain`, which
// words every refusal as the other argument checks do.

const native = require('./native')
const { FAILURE_CLASSES } = require('./classify')

/** The chain's defaults, from native code (the one place they are written). */
const CHAIN_DEFAULTS = native.checkChain(undefined, undefined, undefined, undefined, undefined)
/** As `checkChain` allows (src/binding/chain.rs, the one place they are written). */
const { maxAlternatives: MAX_ALTERNATIVES, maxPlainNameUnits: MAX_NAME_UNITS, maxOnClasses: MAX_ON_CLASSES } = native.chainBounds()
const KNOWN_CLASSES = new Set(FAILURE_CLASSES)

const wholeMs = (value) => value === undefined || (Number.isSafeInteger(value) && value >= 0)

/**
 * The chain's settings when its options are plainly right, checked here
 * because a call into native code costs more than the check; `undefined`
 * when anything is off, for `checkChain` to say what.
 */
function chainSettings(read) {
  const { alternativesOn, cooldownMs, maxCooldownMs, stream } = read
  if (alternativesOn !== undefined && typeof alternativesOn !== 'function') return undefined
  if (stream !== undefined && typeof stream !== 'boolean') return undefined
  if (!wholeMs(cooldownMs) || !wholeMs(maxCooldownMs)) return undefined
  return {
    cooldownMs: cooldownMs ?? CHAIN_DEFAULTS.cooldownMs,
    maxCooldownMs: maxCooldownMs ?? CHAIN_DEFAULTS.maxCooldownMs,
  }
}

/**
 * `alternatives` read once, so that what is checked is what runs (a getter
 * may answer otherwise the second time): an array of at most 64 becomes a
 * plain array of `{ name, operation, on }` copies, `on` a copy of its
 * array (an entry that is not an object, or an `on` that is not an array,
 * stays as it is, for the check to name it); anything else is left as
 * given, for `checkChain` to refuse.
 */
function readOnce(alternatives) {
  let length
  try {
    if (!Array.isArray(alternatives)) return alternatives
    length = alternatives.length
  } catch {
    // A revoked Proxy: `checkChain` names the option.
    return alternatives
  }
  if (!(length <= MAX_ALTERNATIVES)) return alternatives
  const models = []
  for (let i = 0; i < length; i++) {
    const entry = alternatives[i]
    models.push(entry !== null && typeof entry === 'object' ? { name: entry.name, operation: entry.operation, on: copyOn(entry.on), breaker: entry.breaker, limits: entry.limits } : entry)
  }
  return models
}

/** An alternative's `on` read once: an array of at most 64 copied, anything else as given. */
function copyOn(on) {
  return Array.isArray(on) && on.length <= MAX_ON_CLASSES ? Array.from(on) : on
}

/**
 * Whether the copies `readOnce` made are plainly right (an identifier
 * short enough to need no count of its bytes, a function): else
 * `checkChain` says what is wrong.
 */
function plainlyRight(models) {
  for (const model of models) {
    if (model === null || typeof model !== 'object') return false
    const { name, operation, on } = model
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_UNITS || typeof operation !== 'function') return false
    if (on !== undefined && !(Array.isArray(on) && on.length <= MAX_ON_CLASSES && on.every((errorClass) => KNOWN_CLASSES.has(errorClass)))) return false
  }
  return true
}

module.exports = { chainSettings, readOnce, plainlyRight }
