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

test('a stream that cannot be read (locked, throwing getReader, next or iterator getter) is a failure, never a rejection', async () => {
  const locked = () => {
    const stream = new ReadableStream({ start: (c) => c.enqueue('a') })
    stream.getReader()
    return stream
  }
  const getReaderThrows = () => {
    const stream = new ReadableStream({ start: (c) => c.enqueue('a') })
    stream.getReader = () => {
      throw new Error('getReader throws')
    }
    return stream
  }
  const nextThrows = () => ({
    [Symbol.asyncIterator]: () => ({
      next() {
        throw new Error('next throws')
      },
    }),
  })
  const getterChanges = () => {
    let reads = 0
    return {
      get [Symbol.asyncIterator]() {
        if (++reads > 1) throw new Error('asyncIterator getter throws')
        return async function* () {
          yield 'a'
        }
      },
    }
  }
  const notAnSdkResult = () => ({ fullStream: 42, textStream: 'x' })
  const fullStreamThrows = () => ({
    get fullStream() {
      throw new Error('fullStream getter throws')
    },
    textStream: null,
  })
  for (const make of [locked, getReaderThrows, nextThrows, getterChanges, notAnSdkResult, fullStreamThrows]) {
    for (const returns of [make, async () => make()]) {
      const result = await executeWithFallback(returns, { operationName: unique(make.name), defaultValue: 'busy' })
      assert.equal(result.success, true, make.name)
      assert.equal(result.metadata.fallbackType, 'default', make.name)
    }
  }
})
