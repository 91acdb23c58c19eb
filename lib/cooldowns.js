'use strict'

// getCooldowns(): the models benched after a rate limit or an overload
// (README, "Cooldowns"), kept with the singletons' failure history.

const native = require('./native')

/**
 * The cooldowns running now, ending soonest first: `[name, { since, until,
 * remainingMs, reason }]`. Throws the store's coded error when it fails.
 */
function runningCooldowns() {
  const now = Date.now()
  return JSON.parse(native.cooldownStatus(now)).map(({ name, since, until, reason }) => [
    name,
    { since: new Date(since), until: new Date(until), remainingMs: Math.max(0, until - now), reason },
  ])
}

/** `{ [name]: { since, until, remainingMs, reason } }` of every benched model. */
function getCooldowns() {
  const cooldowns = {}
  for (const [name, cooldown] of runningCooldowns()) {
    Object.defineProperty(cooldowns, name, { value: cooldown, writable: true, enumerable: true, configurable: true })
  }
  return cooldowns
}

module.exports = { getCooldowns, runningCooldowns }
