'use strict'

// Hostile inputs against the plain call checked in JavaScript, the chain
// awaiting each model directly, and the published quiet time of cooldowns.

const test = require('node:test')
const assert = require('node:assert/strict')
const { executeWithFallback } = require('..')

let n = 0
const unique = (name) => `${name}-${process.pid}-${++n}`

test('a model of a chain without retry is called as a plain function: it never gets the chain’s own entry as `this`', async () => {
  const seen = []
  const model = function () {
    'use strict'
    seen.push(this)
    if (this !== undefined && this !== null) this.name = 'renamed by the model'
    throw new Error('down')
  }
  const last = function () {
    'use strict'
    seen.push(this)
    return 'answer'
  }
  const alternative = unique('alt')
  const result = await executeWithFallback(model, {
    operationName: unique('this'),
    alternatives: [{ name: unique('alt0'), operation: model }, { name: alternative, operation: last }],
  })
  assert.deepEqual(seen, [undefined, undefined, undefined])
  assert.equal(result.metadata.alternative, alternative)
})
