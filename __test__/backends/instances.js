'use strict'

// For the backend preloads: every `new AIResponseCache(...)`,
// `new BackgroundJobQueue(...)` or `new IntegrationFailureManager(...)` made
// with plain options that have none of `storeKeys` gets `own()`'s store
// options added, so instances stay as independent as in memory.

const NAMES = ['AIResponseCache', 'BackgroundJobQueue', 'IntegrationFailureManager']

function giveEachInstanceItsOwnStore(lib, storeKeys, own) {
  for (const name of NAMES) {
    const Original = lib[name]
    lib[name] = new Proxy(Original, {
      construct(target, args, newTarget) {
        const [options] = args
        let plain
        try {
          plain = options === undefined || (options !== null && Object.getPrototypeOf(options) === Object.prototype)
        } catch {
          // Unreadable options (a revoked Proxy): the package itself must say so.
          plain = false
        }
        if (plain && (options === undefined || !storeKeys.some((key) => key in options))) {
          args = [{ ...options, ...own() }, ...args.slice(1)]
        }
        return Reflect.construct(target, args, newTarget)
      },
    })
  }
}

module.exports = { giveEachInstanceItsOwnStore }
