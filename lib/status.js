'use strict'

// getStorageStatus(): which store the singletons use and whether it answers.

const native = require('./native')

/**
 * `{ backend: 'memory' | 'sqlite' | 'redis', location, reachable, lastError,
 * lastErrorAt, localJobs, ..., redisMode: 'standalone' | 'cluster' | null }`. On Redis it asks the server (one round trip,
 * within `redisTimeoutMs`); messages never hold a password.
 */
function getStorageStatus() {
  const status = JSON.parse(native.storageStatus())
  status.lastErrorAt = status.lastErrorAt === null ? null : new Date(status.lastErrorAt)
  return status
}

module.exports = { getStorageStatus }
