'use strict'

// The classes as exported: native classes (src/binding/{cache,queue,
// failures}.rs) guarded so that calling one without `new` is a TypeError
// with a code (instead of wrapping whatever `this` is), and a method called
// on something that is not an instance says so with `ERR_INVALID_THIS`.

const native = require('./native')
const { startWorker } = require('./worker')

const GUARDED = Symbol.for('fallback-mechanisms.guarded')

function codedTypeError(message, code) {
  const error = new TypeError(message)
  error.code = code
  return error
}

function guardClass(NativeClass) {
  const { prototype, name } = NativeClass
  if (!prototype[GUARDED]) {
    Object.defineProperty(prototype, GUARDED, { value: true })
    for (const key of Object.getOwnPropertyNames(prototype)) {
      const method = prototype[key]
      if (key === 'constructor' || typeof method !== 'function') continue
      // Five parameters: the most any method takes; missing ones stay undefined.
      const guarded = {
        [key](a, b, c, d, e) {
          try {
            return method.call(this, a, b, c, d, e)
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

// process(handlers, options): the worker (lib/worker.js) over this queue.
const nativeProcess = native.BackgroundJobQueue.prototype.process
if (!nativeProcess[GUARDED]) {
  const process = {
    process(handlers, options) {
      return startWorker({ process: (...args) => nativeProcess.apply(this, args) }, handlers, options)
    },
  }.process
  Object.defineProperty(process, GUARDED, { value: true })
  Object.defineProperty(native.BackgroundJobQueue.prototype, 'process', { value: process, writable: true, configurable: true })
}

module.exports = {
  AIResponseCache: guardClass(native.AIResponseCache),
  BackgroundJobQueue: guardClass(native.BackgroundJobQueue),
  IntegrationFailureManager: guardClass(native.IntegrationFailureManager),
}
