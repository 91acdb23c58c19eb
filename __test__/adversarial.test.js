'use strict'

// Hostile inputs against the chain of models, streamed answers, cooldowns
// and events (issue #13): whatever an operation returns or throws,
// executeWithFallback resolves (§2.4, §8).

const test = require('node:test')
const assert = require('node:assert/strict')
const { executeWithFallback } = require('..')

let n = 0
const unique = (name) => `${name}-${process.pid}-${++n}`

test('a primary that throws undefined or null: its error is the chain’s, not a COOLING_DOWN nor the alternative’s', async () => {
  for (const thrown of [undefined, null]) {
    for (const alternatives of [[], [{ name: unique('alt'), operation: () => Promise.reject(new Error('alt down')) }]]) {
      const result = await executeWithFallback(() => {
        throw thrown
      }, { operationName: unique('thrown'), alternatives })
      assert.equal(result.success, false)
      assert.equal(result.message, String(thrown))
      assert.notEqual(result.error.code, 'COOLING_DOWN')
      assert.equal(result.metadata.originalError, String(thrown))
    }
  }
})
