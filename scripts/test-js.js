'use strict'

// Runs the JavaScript suite once per storage backend: `memory`, `sqlite`,
// `redis`, `cluster`, or the first three (`all`, the default). The SQLite
// run preloads __test__/backends/sqlite.js, which points the singletons and
// every instance at files of their own; the Redis run starts one
// redis-server (scripts/redis-server.js: a free port, a temporary
// directory, stopped by its pid) and preloads __test__/backends/redis.js,
// which gives each a key prefix of its own. The cluster run does the same
// on a Redis Cluster of 6 nodes (3 masters, 3 replicas), named by one
// node's URL, and runs __test__/redis-cluster.test.js too. Test files after
// the backend run alone (`node scripts/test-js.js cluster __test__/redis.test.js`).

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { startRedis, startRedisCluster } = require('./redis-server')

const wanted = process.argv[2] || 'all'
const backends = wanted === 'all' ? ['memory', 'sqlite', 'redis'] : [wanted]
const files = process.argv.slice(3)
const root = path.join(__dirname, '..')
// Under emulation (npm run test:platforms: qemu, wine) everything is
// several times slower; the timeouts and the tests' own clocks stretch by
// FALLBACK_MECHANISMS_TEST_SLOWDOWN (__test__/helpers.js reads it too).
const slowdown = Number(process.env.FALLBACK_MECHANISMS_TEST_SLOWDOWN) || 1

function preload(env, name) {
  const file = path.join(root, '__test__', 'backends', `${name}.js`)
  env.NODE_OPTIONS = `${env.NODE_OPTIONS || ''} --require ${JSON.stringify(file)}`.trim()
}

/**
 * The suite's files, named one by one: Node 22 takes `--test` arguments as
 * file patterns, where Node 20 also took a folder, and test:platforms runs
 * the suite on Node 22.
 */
function suiteFiles() {
  return fs
    .readdirSync(path.join(root, '__test__'))
    .filter((f) => /\.test\.m?js$/.test(f))
    .sort()
    .map((f) => path.join('__test__', f))
}

function runSuite(env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', `--test-timeout=${120_000 * slowdown}`, ...(files.length ? files : suiteFiles())], { cwd: root, env, stdio: 'inherit' })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

async function main() {
  for (const backend of backends) {
    if (!['memory', 'sqlite', 'redis', 'cluster'].includes(backend)) {
      console.error(`Unknown backend "${backend}": use memory, sqlite, redis, cluster or all`)
      process.exit(2)
    }
    const env = { ...process.env }
    for (const name of ['FALLBACK_MECHANISMS_DB', 'FALLBACK_MECHANISMS_REDIS_URL', 'FALLBACK_MECHANISMS_REDIS_PREFIX', 'FALLBACK_MECHANISMS_REDIS_TLS_CA', 'FALLBACK_MECHANISMS_TEST_CLUSTER']) delete env[name]
    let server
    if (backend === 'sqlite') preload(env, 'sqlite')
    if (backend === 'redis') {
      server = await startRedis()
      env.FALLBACK_MECHANISMS_TEST_REDIS_URL = server.url
      preload(env, 'redis')
    }
    if (backend === 'cluster') {
      server = await startRedisCluster()
      env.FALLBACK_MECHANISMS_TEST_REDIS_URL = server.url
      env.FALLBACK_MECHANISMS_TEST_CLUSTER = '1'
      preload(env, 'redis')
    }
    console.log(`\n# JavaScript suite, ${backend} backend\n`)
    const status = await runSuite(env).finally(() => server && server.stop())
    if (status !== 0) {
      console.error(`\nThe JavaScript suite failed on the ${backend} backend.`)
      process.exit(status || 1)
    }
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
