'use strict'

// A process that ends on its own (its event loop empty) while jobs,
// failures or lease give-backs it accepted still wait for a Redis server
// that did not answer gives them one last chance: it waits up to
// EXIT_WAIT_MS for them to be written, once, then ends. What is still
// unwritten then is lost with the process (unless `storagePath` keeps it
// for the next one), and a coded warning says how much. One listener per
// process, however many times or contexts load the package.

const native = require('./native')

const EXIT_WAIT_MS = 5_000
const installed = Symbol.for('fallback-mechanisms.exit-wait')

if (!process[installed]) {
  process[installed] = true
  let waited = false
  process.on('beforeExit', () => {
    if (waited || native.pendingWrites() === 0) return
    waited = true
    native.writesSettled(EXIT_WAIT_MS).then((settled) => {
      if (settled) return
      process.emitWarning(
        `fallback-mechanisms: ${native.pendingWrites()} write(s) accepted while Redis did not answer were not written before the process ended (waited ${EXIT_WAIT_MS} ms); give storagePath with redisUrl to keep them for the next process`,
        { code: 'REDIS_WRITES_UNSENT' },
      )
    })
  })
}
