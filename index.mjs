// The package entry for ES modules: the same objects as the CommonJS entry,
// under names a bundler can see statically.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const api = require('./index.js')

export const {
  executeWithFallback,
  getUserFriendlyMessage,
  fallbackToCachedAI,
  skipFailedIntegration,
  queueForLater,
  configure,
  executeService,
  getCircuitBreakerStatus,
  getStorageStatus,
  getLimits,
  getBudgets,
  getCooldowns,
  classify,
  aiResponseCache,
  backgroundJobQueue,
  integrationFailureManager,
  AIResponseCache,
  BackgroundJobQueue,
  IntegrationFailureManager,
} = api

export default api
