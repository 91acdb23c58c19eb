'use strict'

// Runs the JavaScript suite once per storage backend: `memory`, `sqlite`,
// or both (the default). The SQLite run preloads __test__/backends/sqlite.js,
// which points the singletons and every instance at files of their own.

const { spawnSync } = require('node:child_process')
const path = require('node:path')

const wanted = process.argv[2] || 'all'
const backends = wanted === 'all' ? ['memory', 'sqlite'] : [wanted]
const root = path.join(__dirname, '..')

for (const backend of backends) {
  const env = { ...process.env }
  delete env.FALLBACK_MECHANISMS_DB
  if (backend === 'sqlite') {
    const preload = path.join(root, '__test__', 'backends', 'sqlite.js')
    env.NODE_OPTIONS = `${env.NODE_OPTIONS || ''} --require ${JSON.stringify(preload)}`.trim()
  } else if (backend !== 'memory') {
    console.error(`Unknown backend "${backend}": use memory, sqlite or all`)
    process.exit(2)
  }
  console.log(`\n# JavaScript suite, ${backend} backend\n`)
  const run = spawnSync(process.execPath, ['--test', '--test-timeout=120000', '__test__/'], {
    cwd: root,
    env,
    stdio: 'inherit',
  })
  if (run.status !== 0) {
    console.error(`\nThe JavaScript suite failed on the ${backend} backend.`)
    process.exit(run.status || 1)
  }
}
