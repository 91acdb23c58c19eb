'use strict'

// The options of a call with a chain of models (`alternatives`,
// `alternativesOn`, `cooldownMs`, `maxCooldownMs`, `stream`): read once and
// checked here when plainly right, because a call into native code costs
// more than the check; anything off goes to native `checkChain`, which
// words every refusal as the other argument checks do.

const native = require('./native')

/** The chain's defaults, from native code (the one place they are written). */
const CHAIN_DEFAULTS = native.checkChain(undefined, undefined, undefined, undefined, undefined)
/** As `checkChain` allows (src/binding/chain.rs). */
const MAX_ALTERNATIVES = 64
const MAX_NAME_UNITS = 4096 / 3

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
 * plain array of `{ name, operation }` copies (an entry that is not an
 * object stays as it is, for the check to name it); anything else is left
 * as given, for `checkChain` to refuse.
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
    models.push(entry !== null && typeof entry === 'object' ? { name: entry.name, operation: entry.operation, breaker: entry.breaker, limits: entry.limits } : entry)
  }
  return models
}

/**
 * Whether the copies `readOnce` made are plainly right (an identifier
 * short enough to need no count of its bytes, a function): else
 * `checkChain` says what is wrong.
 */
function plainlyRight(models) {
  for (const model of models) {
    if (model === null || typeof model !== 'object') return false
    const { name, operation } = model
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_UNITS || typeof operation !== 'function') return false
  }
  return true
}

module.exports = { chainSettings, readOnce, plainlyRight }
