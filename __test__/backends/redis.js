'use strict'

// Preloaded (NODE_OPTIONS=--require) to run the whole suite against the
// Redis store: scripts/test-js.js starts one redis-server and passes its URL
// in FALLBACK_MECHANISMS_TEST_REDIS_URL. The singletons get a key prefix of
// their own for this process (`configure({ redisUrl, keyPrefix })`), and
// every `new AIResponseCache(...)`, `new BackgroundJobQueue(...)` or
// `new IntegrationFailureManager(...)` made without a store of its own
// gets a fresh prefix, so instances stay as independent as in memory. A
// process started with FALLBACK_MECHANISMS_DB (a test of files) keeps its
// file. Test files that start processes clear NODE_OPTIONS, so those run
// in memory unless told otherwise.

if (process.execArgv.includes('--test')) return

const url = process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL
if (!url) throw new Error('FALLBACK_MECHANISMS_TEST_REDIS_URL is not set: run the suite with `node scripts/test-js.js redis`')

// One prefix per process: a worker thread runs this file again and must
// find the singletons where its process put them.
const run = `suite-${process.pid}`
const thread = require('node:worker_threads').threadId
let instances = 0

const lib = require('../..')
const { giveEachInstanceItsOwnStore } = require('./instances')

// The suite's own server only answers late when the machine is loaded (CI
// runs on 2 busy cores): 10 s is a wait only a real fault exceeds. The
// tests of the timeout itself start servers of their own and name theirs.
const redisTimeoutMs = 10_000

if (!process.env.FALLBACK_MECHANISMS_DB && !process.env.FALLBACK_MECHANISMS_REDIS_URL) {
  lib.configure({ redisUrl: url, keyPrefix: `${run}-singletons`, redisTimeoutMs })
}

const storeKeys = ['storagePath', 'durability', 'busyTimeoutMs', 'redisUrl', 'keyPrefix', 'redisTimeoutMs', 'redisTlsCa']
giveEachInstanceItsOwnStore(lib, storeKeys, () => ({ redisUrl: url, keyPrefix: `${run}-${thread}-instance-${++instances}`, redisTimeoutMs }))
