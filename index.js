'use strict'

// The package entry (CommonJS): picks the public names from the package's
// own JavaScript (lib/) over the native addon (src/binding), and creates
// the singletons' JavaScript handles, all pointing at the process-wide
// native state (README, "State").

/* global EdgeRuntime */
if (typeof EdgeRuntime === 'string') {
  throw new Error(
    "fallback-mechanisms is a native Node.js addon and cannot run in the Edge runtime: use it from the Node.js runtime (export const runtime = 'nodejs').",
  )
}

const native = require('./lib/native')

// FALLBACK_MECHANISMS_DB=/path/file.db keeps the singletons' state in that
// file, as `configure({ storagePath })` would; a module evaluated again (hot
// reload, a worker thread) asks for the same file, which changes nothing.
// FALLBACK_MECHANISMS_REDIS_URL=redis://host:6379/0 (and
// FALLBACK_MECHANISMS_REDIS_PREFIX, and for a rediss:// server whose
// certificate the system does not trust, FALLBACK_MECHANISMS_REDIS_TLS_CA)
// puts them on a Redis or Valkey server instead, shared by every instance
// of the app, as `configure({ redisUrl })` would; with both, the file keeps
// what waits while the server is away.
// Nothing connects yet: an app starts while the server is down.
const env = process.env
if (env.FALLBACK_MECHANISMS_DB || env.FALLBACK_MECHANISMS_REDIS_URL) {
  native.configure({
    storagePath: env.FALLBACK_MECHANISMS_DB || undefined,
    durability: (env.FALLBACK_MECHANISMS_DB && env.FALLBACK_MECHANISMS_DURABILITY) || undefined,
    redisUrl: env.FALLBACK_MECHANISMS_REDIS_URL || undefined,
    keyPrefix: (env.FALLBACK_MECHANISMS_REDIS_URL && env.FALLBACK_MECHANISMS_REDIS_PREFIX) || undefined,
    redisTlsCa: (env.FALLBACK_MECHANISMS_REDIS_URL && env.FALLBACK_MECHANISMS_REDIS_TLS_CA) || undefined,
  })
}

require('./lib/exit')

const { singletons, ...classes } = require('./lib/classes')
const blocks = require('./lib/blocks')
const { executeWithFallback } = require('./lib/execute')
const { executeService, getCircuitBreakerStatus } = require('./lib/service')
const { getStorageStatus } = require('./lib/status')
const { getCooldowns } = require('./lib/cooldowns')
const { configureWith } = require('./lib/redact')
const { getLimits, getBudgets } = require('./lib/guards')
const { classify } = require('./lib/classify')

// Events and metrics through OpenTelemetry when @opentelemetry/api is
// installed, unless FALLBACK_MECHANISMS_OTEL=0 (lib/telemetry.js).
require('./lib/telemetry').start()

module.exports = {
  executeWithFallback,
  getUserFriendlyMessage: native.getUserFriendlyMessage,
  ...blocks,
  // `redact` and `classify` are taken out and checked in JavaScript (lib/redact.js).
  configure: configureWith(native.configure),
  executeService,
  getCircuitBreakerStatus,
  getStorageStatus,
  getLimits,
  getBudgets,
  getCooldowns,
  // The built-in failure classifier; `configure({ classify })` sets the one calls use (lib/classify.js).
  classify,
  ...singletons,
  ...classes,
}
