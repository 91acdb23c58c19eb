// The ES module entry exposes the same objects as the CommonJS one.

import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

import * as esm from 'fallback-mechanisms'
import defaultExport, { executeWithFallback, aiResponseCache, AIResponseCache } from 'fallback-mechanisms'

const require = createRequire(import.meta.url)
const cjs = require('fallback-mechanisms')

const NAMES = [
  'executeWithFallback', 'getUserFriendlyMessage', 'fallbackToCachedAI', 'skipFailedIntegration', 'queueForLater',
  'configure', 'executeService', 'getCircuitBreakerStatus', 'getStorageStatus', 'getLimits', 'getBudgets', 'getCooldowns', 'classify', 'aiResponseCache', 'backgroundJobQueue', 'integrationFailureManager',
  'AIResponseCache', 'BackgroundJobQueue', 'IntegrationFailureManager',
]

test('every name of the contract is exported by both entries, as the same object', () => {
  for (const name of NAMES) {
    assert.ok(esm[name], `ESM export ${name}`)
    assert.equal(esm[name], cjs[name], name)
  }
  assert.equal(defaultExport, cjs)
  assert.deepEqual(Object.keys(cjs).sort(), [...NAMES].sort())
})

test('the ESM entry works end to end', async () => {
  assert.ok(aiResponseCache instanceof AIResponseCache)
  const result = await executeWithFallback(async () => 'esm', { operationName: 'esm' })
  assert.equal(result.data, 'esm')
})
