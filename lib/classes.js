'use strict'

// The exported classes: each wraps a native handle (src/binding/{cache,
// queue,failures}.rs) that checks arguments and returns data, and shapes
// what it returns. Calling a class without `new`, or a method on something
// that is not an instance, is a TypeError with a code.

const native = require('./native')
const { job, cachedResponse, cacheStats, queueStats, failure, serviceStats } = require('./shapes')
const { startWorker, drainQueue } = require('./worker')

function codedTypeError(message, code) {
  const error = new TypeError(message)
  error.code = code
  return error
}

function notAnInstance(name) {
  return codedTypeError(`Value of "this" must be of type ${name}`, 'ERR_INVALID_THIS')
}

/** Where native methods put the numbers they return (src/binding/numbers.rs). */
const numbers = new Float64Array(8)

/** The handle the singletons wrap is passed through this, never through the options. */
let adopting = null

class AIResponseCache {
  #native

  constructor(options) {
    this.#native = adopting ?? new native.NativeResponseCache(options)
  }

  static #of(self) {
    if (self === null || typeof self !== 'object' || !(#native in self)) throw notAnInstance('AIResponseCache')
    return self.#native
  }

  set(prompt, response, modelId, ttl) {
    AIResponseCache.#of(this).set(prompt, response, modelId, ttl)
  }

  get(prompt, modelId) {
    const response = AIResponseCache.#of(this).get(prompt, modelId, numbers)
    return response === null ? null : cachedResponse(prompt, JSON.parse(response), modelId, numbers)
  }

  delete(prompt, modelId) {
    return AIResponseCache.#of(this).delete(prompt, modelId)
  }

  clear() {
    AIResponseCache.#of(this).clear()
  }

  getStats() {
    AIResponseCache.#of(this).getStats(numbers)
    return cacheStats(numbers)
  }
}

class BackgroundJobQueue {
  #native

  constructor(options) {
    this.#native = adopting ?? new native.NativeJobQueue(options)
  }

  static #of(self) {
    if (self === null || typeof self !== 'object' || !(#native in self)) throw notAnInstance('BackgroundJobQueue')
    return self.#native
  }

  enqueue(queued) {
    return BackgroundJobQueue.#of(this).enqueue(queued)
  }

  dequeue() {
    const text = BackgroundJobQueue.#of(this).dequeue()
    return text === null ? null : job(JSON.parse(text))
  }

  complete(jobId) {
    return BackgroundJobQueue.#of(this).complete(jobId)
  }

  fail(jobId, error) {
    return BackgroundJobQueue.#of(this).fail(jobId, error)
  }

  getAll(options) {
    return JSON.parse(BackgroundJobQueue.#of(this).getAll(options)).map(job)
  }

  getByStatus(status, options) {
    return JSON.parse(BackgroundJobQueue.#of(this).getByStatus(status, options)).map(job)
  }

  getByUser(userId, options) {
    return JSON.parse(BackgroundJobQueue.#of(this).getByUser(userId, options)).map(job)
  }

  retryFailed(jobId) {
    return BackgroundJobQueue.#of(this).retryFailed(jobId)
  }

  clearCompleted() {
    return BackgroundJobQueue.#of(this).clearCompleted()
  }

  getStats() {
    BackgroundJobQueue.#of(this).getStats(numbers)
    return queueStats(numbers)
  }

  process(handlers, options) {
    return startWorker(BackgroundJobQueue.#of(this), handlers, options)
  }

  /** Resolves with what it did; bad arguments (or `this`) reject, as for every promise-returning call. */
  async drain(handlers, options) {
    return drainQueue(BackgroundJobQueue.#of(this), handlers, options)
  }
}

class IntegrationFailureManager {
  #native

  constructor(options) {
    this.#native = adopting ?? new native.NativeFailureHistory(options)
  }

  static #of(self) {
    if (self === null || typeof self !== 'object' || !(#native in self)) throw notAnInstance('IntegrationFailureManager')
    return self.#native
  }

  recordFailure(service, operation, error, skipReason) {
    IntegrationFailureManager.#of(this).recordFailure(service, operation, error, skipReason)
  }

  getFailures(service, options) {
    return JSON.parse(IntegrationFailureManager.#of(this).getFailures(service, options)).map(failure)
  }

  shouldSkipService(service, threshold) {
    return IntegrationFailureManager.#of(this).shouldSkipService(service, threshold)
  }

  clearFailures(service) {
    return IntegrationFailureManager.#of(this).clearFailures(service)
  }

  getStats() {
    return serviceStats(JSON.parse(IntegrationFailureManager.#of(this).getStats()))
  }
}

/** An instance of `Class` over an existing native handle (the singletons). */
function adopt(Class, handle) {
  adopting = handle
  try {
    return new Class()
  } finally {
    adopting = null
  }
}

/** Calling a class without `new` says so with a code. */
function requireNew(Class) {
  return new Proxy(Class, {
    apply() {
      throw codedTypeError(`Class constructor ${Class.name} cannot be invoked without 'new'`, 'ERR_CONSTRUCT_CALL_REQUIRED')
    },
  })
}

module.exports = {
  AIResponseCache: requireNew(AIResponseCache),
  BackgroundJobQueue: requireNew(BackgroundJobQueue),
  IntegrationFailureManager: requireNew(IntegrationFailureManager),
  singletons: {
    aiResponseCache: adopt(AIResponseCache, native.sharedAiResponseCache()),
    backgroundJobQueue: adopt(BackgroundJobQueue, native.sharedBackgroundJobQueue()),
    integrationFailureManager: adopt(IntegrationFailureManager, native.sharedIntegrationFailureManager()),
  },
}
