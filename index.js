'use strict'

// The package entry (CommonJS). Everything here is native: `binding.js` is
// the loader `napi build` generates; this file only picks the public names
// and creates the singletons' JavaScript handles, which all point at the
// process-wide native state (API.md §9).

const native = require('./binding.js')

const aiResponseCache = native.sharedAiResponseCache()
const backgroundJobQueue = native.sharedBackgroundJobQueue()
const integrationFailureManager = native.sharedIntegrationFailureManager()

module.exports = {
  executeWithFallback: native.executeWithFallback,
  getUserFriendlyMessage: native.getUserFriendlyMessage,
  fallbackToCachedAI: native.fallbackToCachedAI,
  skipFailedIntegration: native.skipFailedIntegration,
  queueForLater: native.queueForLater,
  configure: native.configure,
  aiResponseCache,
  backgroundJobQueue,
  integrationFailureManager,
  AIResponseCache: native.AIResponseCache,
  BackgroundJobQueue: native.BackgroundJobQueue,
  IntegrationFailureManager: native.IntegrationFailureManager,
}
