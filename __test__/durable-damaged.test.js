'use strict'

// Damaged rows in the SQLite file: a cached response that is not JSON, a
// job of an unknown type, a job whose payload is not JSON. Each is a
// STORAGE_CORRUPT for a direct call (or skipped), a miss for the fallback
// path, and is moved to the damaged_rows table so the rest keeps flowing.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const { AIResponseCache, BackgroundJobQueue, executeWithFallback } = require('..')
const { withoutBetterSqlite } = require('./helpers')

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-damaged-'))
let files = 0
const freshFile = () => path.join(root, `damaged-${++files}.db`)
test.after(() => fs.rmSync(root, { recursive: true, force: true }))

// Damaged from another process: better-sqlite3 brings its own copy of
// SQLite, and two copies in one process break each other's POSIX locks
// (closing one deletes the -wal the other still uses).
function damage(file, sql, ...params) {
  const code = `const db = new (require(${JSON.stringify(require.resolve('better-sqlite3'))}))(${JSON.stringify(file)}); db.prepare(${JSON.stringify(sql)}).run(...${JSON.stringify(params)}); db.close()`
  const run = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, NODE_OPTIONS: '' }, encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
}

function damagedRows(file) {
  const code = `const db = new (require(${JSON.stringify(require.resolve('better-sqlite3'))}))(${JSON.stringify(file)}, { readonly: true }); process.stdout.write(JSON.stringify(db.prepare('SELECT source, key, reason FROM damaged_rows ORDER BY seq').all())); db.close()`
  const run = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, NODE_OPTIONS: '' }, encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  return JSON.parse(run.stdout)
}

const job = (extra = {}) => ({ type: 'ai', operation: 'op', payload: { n: 1 }, userId: 'u', ...extra })

test('a cached response that is not JSON: get throws STORAGE_CORRUPT naming the key, the row is set aside', { skip: withoutBetterSqlite }, () => {
  const file = freshFile()
  const cache = new AIResponseCache({ storagePath: file })
  cache.set('bad prompt', { a: 1 }, 'm')
  cache.set('good prompt', { b: 2 }, 'm')
  damage(file, "UPDATE cache_entries SET response = '{not json' WHERE prompt = 'bad prompt'")
  assert.throws(
    () => cache.get('bad prompt', 'm'),
    (e) => e instanceof Error && e.code === 'STORAGE_CORRUPT' && /"bad prompt"/.test(e.message) && /damaged_rows/.test(e.message),
  )
  assert.equal(cache.get('bad prompt', 'm'), null, 'moved aside: a miss from now on')
  assert.deepEqual(cache.get('good prompt', 'm').response, { b: 2 })
  assert.deepEqual(damagedRows(file).map((r) => r.source), ['cache_entries'])
})

test('a cached response that is not JSON is a miss for executeWithFallback', { skip: withoutBetterSqlite }, async () => {
  const file = freshFile()
  const cache = new AIResponseCache({ storagePath: file })
  cache.set('p', 'fine', 'm')
  damage(file, "UPDATE cache_entries SET response = 'oops' WHERE prompt = 'p'")
  // The singleton is what executeWithFallback reads: damage one of its rows
  // when it is in a file (the SQLite run), else this case is the memory one.
  const { aiResponseCache } = require('..')
  aiResponseCache.set('shared p', 'fine', 'm')
  if (process.env.FALLBACK_MECHANISMS_DB) {
    damage(process.env.FALLBACK_MECHANISMS_DB, "UPDATE cache_entries SET response = 'oops' WHERE prompt = 'shared p'")
  }
  const result = await executeWithFallback(() => Promise.reject(new Error('down')), {
    operationName: 'gen',
    cacheKey: { prompt: 'shared p', modelId: 'm' },
    defaultValue: 'default',
  })
  assert.equal(result.success, true)
  assert.equal(result.data, process.env.FALLBACK_MECHANISMS_DB ? 'default' : 'fine')
})

test('jobs of an unknown type or with a non-JSON payload never block dequeue; they are set aside', { skip: withoutBetterSqlite }, () => {
  const file = freshFile()
  const queue = new BackgroundJobQueue({ storagePath: file })
  const ids = [0, 1, 2, 3].map((i) => queue.enqueue(job({ payload: { i } })))
  damage(file, "UPDATE jobs SET type = 'bogus' WHERE id = ?", ids[0])
  damage(file, "UPDATE jobs SET payload = '{nope' WHERE id = ?", ids[1])
  damage(file, 'UPDATE jobs SET priority = 42 WHERE id = ?', ids[2])
  const next = queue.dequeue()
  assert.equal(next.id, ids[3], 'the next good job')
  assert.deepEqual(next.payload, { i: 3 })
  assert.equal(queue.dequeue(), null)
  assert.deepEqual(queue.getAll().map((j) => j.id), [ids[3]])
  const rows = damagedRows(file)
  assert.deepEqual(rows.map((r) => r.key), ids.slice(0, 3))
  assert.ok(rows.every((r) => r.source === 'jobs' && /^damaged row: /.test(r.reason)))
  assert.match(rows[1].reason, /payload is not valid JSON/)
})

test('a worker keeps processing past damaged jobs', { skip: withoutBetterSqlite }, async () => {
  const file = freshFile()
  const queue = new BackgroundJobQueue({ storagePath: file })
  const ids = []
  for (let i = 0; i < 20; i++) ids.push(queue.enqueue(job({ payload: { i } })))
  damage(file, "UPDATE jobs SET type = 'bogus' WHERE id = ?", ids[0])
  damage(file, "UPDATE jobs SET payload = 'x' WHERE id = ?", ids[1])
  const seen = []
  const worker = queue.process(async (j) => {
    seen.push(j.payload.i)
  }, { pollIntervalMs: 5, concurrency: 4 })
  const started = Date.now()
  while (queue.getStats().completed < 18 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 10))
  await worker.stop()
  assert.equal(queue.getStats().completed, 18)
  assert.equal(queue.getStats().processing, 0, 'nothing left in processing')
  assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: 18 }, (_, i) => i + 2))
  assert.equal(damagedRows(file).length, 2)
})
