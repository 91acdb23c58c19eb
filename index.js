'use strict'

// The package entry (CommonJS). Everything here is native: `binding.js` is
// the loader `napi build` generates; this file only picks the public names,
// creates the singletons' JavaScript handles (all pointing at the
// process-wide native state, API.md §9), and turns mistakes V8 reports
// without a `code` into errors that have one.

/* global EdgeRuntime */
if (typeof EdgeRuntime === 'string') {
  throw new Error(
    "fallback-mechanisms is a native Node.js addon and cannot run in the Edge runtime: use it from the Node.js runtime (export const runtime = 'nodejs').",
  )
}

function loadNative() {
  try {
    return require('./binding.js')
  } catch (cause) {
    const { platformName } = require('./scripts/platform.js')
    throw new Error(
      `fallback-mechanisms has no native binary for ${platformName()}: reinstall it with a Rust toolchain present (https://rustup.rs) to build one from source.`,
      { cause },
    )
  }
}

const native = loadNative()

const GUARDED = Symbol.for('fallback-mechanisms.guarded')

function codedTypeError(message, code) {
  const error = new TypeError(message)
  error.code = code
  return error
}

/**
 * The class as exported: calling it without `new` is a TypeError with a
 * code (instead of wrapping whatever `this` is), and a method called on
 * something that is not an instance says so with `ERR_INVALID_THIS`.
 */
function guardClass(NativeClass) {
  const { prototype, name } = NativeClass
  if (!prototype[GUARDED]) {
    Object.defineProperty(prototype, GUARDED, { value: true })
    for (const key of Object.getOwnPropertyNames(prototype)) {
      const method = prototype[key]
      if (key === 'constructor' || typeof method !== 'function') continue
      // Four parameters: the most any method takes; missing ones stay undefined.
      const guarded = {
        [key](a, b, c, d) {
          try {
            return method.call(this, a, b, c, d)
          } catch (error) {
            if (error instanceof TypeError && error.message === 'Illegal invocation' && error.code === undefined) {
              throw codedTypeError(`Value of "this" must be of type ${name}`, 'ERR_INVALID_THIS')
            }
            throw error
          }
        },
      }[key]
      Object.defineProperty(prototype, key, { value: guarded, writable: true, configurable: true })
    }
  }
  return new Proxy(NativeClass, {
    apply() {
      throw codedTypeError(`Class constructor ${name} cannot be invoked without 'new'`, 'ERR_CONSTRUCT_CALL_REQUIRED')
    },
  })
}

// FALLBACK_MECHANISMS_DB=/path/file.db keeps the singletons' state in that
// file, as `configure({ storagePath })` would; a module evaluated again (hot
// reload, a worker thread) asks for the same file, which changes nothing.
if (process.env.FALLBACK_MECHANISMS_DB) {
  native.configure({
    storagePath: process.env.FALLBACK_MECHANISMS_DB,
    durability: process.env.FALLBACK_MECHANISMS_DURABILITY || undefined,
  })
}

const AIResponseCache = guardClass(native.AIResponseCache)
const BackgroundJobQueue = guardClass(native.BackgroundJobQueue)
const IntegrationFailureManager = guardClass(native.IntegrationFailureManager)

module.exports = {
  executeWithFallback: native.__executeWithFallbackEntry(),
  getUserFriendlyMessage: native.getUserFriendlyMessage,
  fallbackToCachedAI: native.fallbackToCachedAI,
  skipFailedIntegration: native.skipFailedIntegration,
  queueForLater: native.queueForLater,
  configure: native.configure,
  executeService: native.executeService,
  getCircuitBreakerStatus: native.getCircuitBreakerStatus,
  aiResponseCache: native.sharedAiResponseCache(),
  backgroundJobQueue: native.sharedBackgroundJobQueue(),
  integrationFailureManager: native.sharedIntegrationFailureManager(),
  AIResponseCache,
  BackgroundJobQueue,
  IntegrationFailureManager,
}
