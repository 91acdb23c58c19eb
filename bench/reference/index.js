'use strict'

// The reference: a plain JavaScript implementation of the same API, written
// the straightforward way the TypeScript module it replaces works: a Map
// keyed by a 32-bit string hash for the cache, an array that `dequeue`
// filters and sorts on every call, an array of failures filtered on every
// `shouldSkipService`. Used only by the benchmark (and held to the contract's
// behaviour by __test__/behaviour.test.js). Never shipped.

const MESSAGES = {
  cache: "We encountered an issue, but don't worry! We're showing you a previous result while we work on this.",
  skip: "We encountered an issue, but don't worry! We've temporarily skipped this step to keep things moving.",
  queue: "We encountered an issue, but don't worry! We've saved your request and will process it shortly.",
  default: "We encountered an issue, but don't worry! We're using a safe default while we resolve this.",
}
const GENERIC = "We encountered an issue, but don't worry! Please try again in a moment."

class AIResponseCache {
  constructor() {
    this.cache = new Map()
    this.DEFAULT_TTL = 24 * 60 * 60 * 1000
  }

  generateKey(prompt, modelId) {
    const str = `${modelId}:${prompt}`
    let hash = 0
    for (let i = 0; i < str.length; i++) {
      hash = (hash << 5) - hash + str.charCodeAt(i)
      hash = hash & hash
    }
    return `${modelId}:${hash}`
  }

  set(prompt, response, modelId, ttl) {
    const now = new Date()
    this.cache.set(this.generateKey(prompt, modelId), {
      prompt,
      response,
      timestamp: now,
      modelId,
      expiresAt: new Date(now.getTime() + (ttl || this.DEFAULT_TTL)),
    })
  }

  get(prompt, modelId) {
    const key = this.generateKey(prompt, modelId)
    const cached = this.cache.get(key)
    if (!cached) return null
    if (new Date() > cached.expiresAt) {
      this.cache.delete(key)
      return null
    }
    return cached
  }

  delete(prompt, modelId) {
    this.cache.delete(this.generateKey(prompt, modelId))
  }

  clear() {
    this.cache.clear()
  }

  getStats() {
    const entries = Array.from(this.cache.values())
    const times = entries.map((e) => e.timestamp.getTime())
    return {
      size: this.cache.size,
      oldestEntry: entries.length ? new Date(Math.min(...times)) : undefined,
      newestEntry: entries.length ? new Date(Math.max(...times)) : undefined,
    }
  }
}

class BackgroundJobQueue {
  constructor() {
    this.queue = []
  }

  enqueue(job) {
    const id = `job_${Date.now()}_${Math.random().toString(36).substr(2, 9)}`
    this.queue.push({ ...job, id, createdAt: new Date(), status: 'pending' })
    return id
  }

  dequeue() {
    const now = new Date()
    const priorityOrder = { high: 3, medium: 2, low: 1 }
    const ready = this.queue
      .filter((job) => job.status === 'pending' && (!job.nextRetryAt || job.nextRetryAt <= now))
      .sort((a, b) => {
        const byPriority = priorityOrder[b.priority] - priorityOrder[a.priority]
        if (byPriority !== 0) return byPriority
        return a.createdAt.getTime() - b.createdAt.getTime()
      })
    if (ready.length === 0) return null
    const job = ready[0]
    job.status = 'processing'
    return job
  }

  complete(jobId) {
    const job = this.queue.find((j) => j.id === jobId)
    if (job) job.status = 'completed'
  }

  fail(jobId, error) {
    const job = this.queue.find((j) => j.id === jobId)
    if (!job) return
    job.retryCount++
    job.lastError = error
    if (job.retryCount >= job.maxRetries) {
      job.status = 'failed'
    } else {
      job.status = 'pending'
      const delays = [60_000, 300_000, 900_000, 1_800_000]
      job.nextRetryAt = new Date(Date.now() + delays[Math.min(job.retryCount - 1, delays.length - 1)])
    }
  }

  getAll() {
    return [...this.queue]
  }

  getByStatus(status) {
    return this.queue.filter((j) => j.status === status)
  }

  getByUser(userId) {
    return this.queue.filter((j) => j.userId === userId)
  }

  clearCompleted() {
    this.queue = this.queue.filter((j) => j.status !== 'completed')
  }

  getStats() {
    return {
      total: this.queue.length,
      pending: this.queue.filter((j) => j.status === 'pending').length,
      processing: this.queue.filter((j) => j.status === 'processing').length,
      completed: this.queue.filter((j) => j.status === 'completed').length,
      failed: this.queue.filter((j) => j.status === 'failed').length,
    }
  }
}

class IntegrationFailureManager {
  constructor() {
    this.failures = []
    this.FAILURE_WINDOW = 5 * 60 * 1000
  }

  recordFailure(service, operation, error, skipReason) {
    this.failures.push({ service, operation, error, timestamp: new Date(), skipReason })
  }

  getFailures(service) {
    return service ? this.failures.filter((f) => f.service === service) : [...this.failures]
  }

  shouldSkipService(service, threshold = 3) {
    const cutoff = Date.now() - this.FAILURE_WINDOW
    const recent = this.failures.filter((f) => f.service === service && f.timestamp.getTime() >= cutoff)
    return recent.length >= threshold
  }

  clearFailures(service) {
    this.failures = service ? this.failures.filter((f) => f.service !== service) : []
  }

  getStats() {
    const stats = {}
    for (const f of this.failures) {
      const entry = stats[f.service] || (stats[f.service] = { count: 0, lastFailure: f.timestamp })
      entry.count++
      if (f.timestamp > entry.lastFailure) entry.lastFailure = f.timestamp
    }
    return stats
  }
}

const aiResponseCache = new AIResponseCache()
const backgroundJobQueue = new BackgroundJobQueue()
const integrationFailureManager = new IntegrationFailureManager()

function errorMessage(error) {
  return error instanceof Error ? error.message : String(error)
}

function getUserFriendlyMessage(error, fallbackType) {
  return MESSAGES[fallbackType] || GENERIC
}

async function fallbackToCachedAI(prompt, modelId, defaultValue) {
  const cached = aiResponseCache.get(prompt, modelId)
  if (cached) {
    return { success: true, data: cached.response, usedFallback: true, fallbackType: 'cache', message: 'Using cached AI response from previous request' }
  }
  if (defaultValue !== undefined) {
    return { success: true, data: defaultValue, usedFallback: true, fallbackType: 'default', message: 'Using default value as no cache available' }
  }
  return { success: false, usedFallback: false, fallbackType: 'cache', message: 'No cached response available' }
}

function skipFailedIntegration(service, operation, error) {
  const skipReason = `Service temporarily unavailable: ${errorMessage(error)}`
  integrationFailureManager.recordFailure(service, operation, errorMessage(error), skipReason)
  return { success: true, data: null, usedFallback: true, fallbackType: 'skip', message: `Skipped ${service} integration - ${skipReason}` }
}

function queueForLater(type, operation, payload, userId, priority = 'medium', maxRetries = 3) {
  const jobId = backgroundJobQueue.enqueue({ type, operation, payload, userId, priority, retryCount: 0, maxRetries })
  return { success: true, data: jobId, usedFallback: true, fallbackType: 'queue', message: `Job queued for later processing (ID: ${jobId})` }
}

function fellBack(error, fallbackType, data, extra) {
  return {
    success: true,
    data,
    message: getUserFriendlyMessage(error, fallbackType),
    timestamp: new Date(),
    metadata: { usedFallback: true, fallbackType, ...extra },
  }
}

async function executeWithFallback(operation, options) {
  try {
    const data = await operation()
    if (options.cacheKey && data !== undefined && data !== null) {
      aiResponseCache.set(options.cacheKey.prompt, data, options.cacheKey.modelId)
    }
    return { success: true, data, message: 'Operation completed successfully', timestamp: new Date() }
  } catch (error) {
    if (options.cacheKey) {
      const cached = aiResponseCache.get(options.cacheKey.prompt, options.cacheKey.modelId)
      if (cached) return fellBack(error, 'cache', cached.response)
      if (options.defaultValue !== undefined) return fellBack(error, 'default', options.defaultValue)
    }
    if (options.queueOnFailure && options.userId) {
      const { type, payload, priority } = options.queueOnFailure
      const queued = queueForLater(type, options.operationName, payload, options.userId, priority)
      return fellBack(error, 'queue', undefined, { jobId: queued.data })
    }
    if (options.allowSkip) {
      skipFailedIntegration(options.service ?? options.operationName, 'execute', error)
      return fellBack(error, 'skip', undefined)
    }
    if (options.defaultValue !== undefined) return fellBack(error, 'default', options.defaultValue)
    const message = errorMessage(error)
    return {
      success: false,
      error: error instanceof Error ? error : new Error(message),
      message,
      timestamp: new Date(),
      metadata: { usedFallback: false, originalError: message },
    }
  }
}

module.exports = {
  executeWithFallback,
  getUserFriendlyMessage,
  fallbackToCachedAI,
  skipFailedIntegration,
  queueForLater,
  aiResponseCache,
  backgroundJobQueue,
  integrationFailureManager,
  AIResponseCache,
  BackgroundJobQueue,
  IntegrationFailureManager,
}
