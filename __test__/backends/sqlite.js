'use strict'

// Preloaded (NODE_OPTIONS=--require) to run the whole suite against the
// SQLite store: the singletons get a fresh file for this process through
// FALLBACK_MECHANISMS_DB, and every `new AIResponseCache(...)`,
// `new BackgroundJobQueue(...)` or `new IntegrationFailureManager(...)`
// made without a `storagePath` gets a fresh file of its own, so instances
// stay as independent as in memory. Processes a test starts inherit the
// variable, so they share the singletons' file, as they share memory state
// in the in-memory run (worker threads) or are told to (child processes).

// The `node --test` runner itself only spawns the test files: leave it alone,
// or every file would inherit its singletons' file.
if (process.execArgv.includes('--test')) return

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(os.tmpdir(), 'fallback-mechanisms-suite')
fs.mkdirSync(root, { recursive: true })
const dir = fs.mkdtempSync(path.join(root, `${process.pid}-`))
let files = 0
const freshFile = () => path.join(dir, `instance-${++files}.db`)

if (!process.env.FALLBACK_MECHANISMS_DB) {
  process.env.FALLBACK_MECHANISMS_DB = path.join(dir, 'singletons.db')
}

const lib = require('../..')
const { giveEachInstanceItsOwnStore } = require('./instances')

giveEachInstanceItsOwnStore(lib, ['storagePath', 'durability'], () => ({ storagePath: freshFile() }))

process.on('exit', () => {
  if (process.env.FALLBACK_MECHANISMS_KEEP_FILES) return
  try {
    fs.rmSync(dir, { recursive: true, force: true })
  } catch {}
})
