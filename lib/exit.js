'use strict'

// A process that ends on its own (its event loop empty) while jobs,
// failures or lease give-backs it accepted still wait for a Redis server
// that did not answer gives them one last chance: it waits up to 5 s for
// them to be written, once, then ends. What is still
// unwritten then is lost with the process (unless `storagePath` keeps it
// for the next one), and a coded warning says how much. One listener per
// process, however many times or contexts load the package.

const native = require('./native')

const installed = Symbol.for('fallback-mechanisms.exit-wait')

// The listener is the addon's own function (src/binding/status.rs, which
// waits up to 5 s and warns REDIS_WRITES_UNSENT): a closure made here
// would keep this `vm` context (a test file's) alive as long as `process`
// holds it, where a test runner hands every context the same `process`.
if (!process[installed]) {
  process[installed] = true
  process.on('beforeExit', native.beforeExit)
}
