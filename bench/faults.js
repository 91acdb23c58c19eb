'use strict'

// The exactly-once harness for Redis mode (issue #18): one producer
// enqueues jobs while W worker processes run them, under one fault at a
// time (and all of them together), against a real redis-server with AOF
// `always`. Every id the producer was given is then looked for:
//
//   lost        an acknowledged id the queue does not hold and never ran
//   duplicated  a job held twice (two copies of one enqueue), or run to its
//               end twice when nothing explains it: its first run's worker
//               lived on (the job was handed to a second worker while the
//               first still had it)
//   stuck       an acknowledged job not completed once the faults stop and
//               the workers have had time to finish (pending, processing
//               or failed)
//
// A worker killed while it runs a job, or after the handler returned and
// before the outcome reached the server (a few ms), leaves the job leased;
// it runs again when the lease ends, as in any queue with leases (BullMQ's
// stalled jobs, SQS's visibility timeout). Those runs are counted apart:
// "run again after a kill" (cut off mid-run, or finished and killed within
// a second, before its outcome could be recorded). Usage:
//   node bench/faults.js [--jobs 3000] [--workers 3] [--only <row>]
// It prints a Markdown table (bench/README.md, "Redis under faults").

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')

if (process.argv[2] === 'worker') {
  worker()
} else if (process.argv[2] === 'producer') {
  producer()
} else if (process.argv[2] === 'clearer') {
  clearer()
} else {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}

/** The store of `url` and `keyPrefix` (none: the singletons'), with the queue's settings. */
function queueOptions(url, keyPrefix) {
  // backoffMs [0]: a lost lease's retry is due at once; maxRetries and
  // maxStalls high: no job becomes a dead letter because workers were killed.
  const queue = { leaseMs: 1500, backoffMs: [0], maxStalls: 1000 }
  return url ? { redisUrl: url, keyPrefix, redisTimeoutMs: 200, ...queue } : queue
}

/** A worker process: runs jobs, writing each job's number to its log when the handler reaches its end. */
function worker() {
  const { BackgroundJobQueue } = require(root)
  const [url, keyPrefix, log] = process.argv.slice(3)
  const queue = new BackgroundJobQueue(queueOptions(url, keyPrefix))
  const fd = fs.openSync(log, 'a')
  queue.process(
    async (job) => {
      fs.writeSync(fd, `s ${job.payload.n} ${process.pid} ${Date.now()}\n`)
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10))
      fs.writeSync(fd, `e ${job.payload.n} ${process.pid} ${Date.now()}\n`)
    },
    { concurrency: 4, pollIntervalMs: 50 },
  )
}

/**
 * The producer process: enqueues the jobs on the singletons (their store is
 * the environment's: FALLBACK_MECHANISMS_REDIS_URL and _PREFIX), writing
 * each id it is given to its log, and stays until nothing it accepted waits
 * here for the server. A process of its own, so that its synchronous calls
 * (each up to redisTimeoutMs while the server is away) never delay the
 * faults' own timers.
 */
async function producer() {
  const lib = require(root)
  const [jobs, log] = process.argv.slice(3)
  const fd = fs.openSync(log, 'a')
  lib.configure({ queue: queueOptions() })
  for (let n = 0; n < Number(jobs); n++) {
    for (;;) {
      try {
        const id = lib.backgroundJobQueue.enqueue({ type: 'analytics', operation: 'count', payload: { n }, userId: `u${n % 7}`, priority: 'medium', retryCount: 0, maxRetries: 1000 })
        fs.writeSync(fd, `${id} ${n}\n`)
        break
      } catch {
        // Refused outright (never kept): nothing was acknowledged; ask again.
        await sleep(20)
      }
    }
    if (n % 20 === 0) await sleep(5)
  }
  while (lib.getStorageStatus().localJobs > 0) await sleep(100)
}

/** Calls clearCompleted every 50 ms until killed. */
async function clearer() {
  const { BackgroundJobQueue } = require(root)
  const [url, keyPrefix] = process.argv.slice(3)
  const queue = new BackgroundJobQueue(queueOptions(url, keyPrefix))
  for (;;) {
    try {
      queue.clearCompleted()
    } catch {}
    await sleep(50)
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1] : fallback
}

async function main() {
  const { startRedis } = require('../scripts/redis-server')
  const jobs = Number(arg('jobs', 3000))
  const workers = Number(arg('workers', 3))
  const only = arg('only')
  const rows = [
    ['no fault', []],
    ['workers SIGKILLed every 400 ms', ['kill-workers']],
    ['server paused (SIGSTOP 600 ms) every 1.5 s', ['pause']],
    ['server kill -9 + restart (AOF always) every 2 s', ['restart']],
    ['clearCompleted every 50 ms', ['clear']],
    ['all of the above at once', ['kill-workers', 'pause', 'restart', 'clear']],
  ].filter(([name]) => !only || name.startsWith(only))
  const results = []
  for (const [name, faults] of rows) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-faults-'))
    const server = await startRedis({ dir, args: ['--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'] })
    try {
      const row = await run({ name, faults, jobs, workers, server, dir, startRedis })
      results.push(row)
      console.error(JSON.stringify(row))
    } finally {
      await server.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  console.log('| fault | jobs | lost | duplicated | stuck | run again after a kill | seconds |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const r of results) console.log(`| ${r.name} | ${r.jobs} | ${r.lost} | ${r.duplicated} | ${r.stuck} | ${r.rerun} | ${r.seconds} |`)
}

async function run({ name, faults, jobs, workers, server, dir, startRedis }) {
  const began = Date.now()
  if (process.env.FAULTS_DEBUG) {
    spawn('sh', ['-c', `redis-cli -p ${server.port} monitor > /tmp/monitor-${name.split(' ')[0]}.log`], { stdio: 'ignore', detached: true }).unref()
    await sleep(200)
  }
  const keyPrefix = `faults-${process.pid}`
  const lib = require(root)
  const options = queueOptions(server.url, keyPrefix)
  const observer = new lib.BackgroundJobQueue(options)
  const children = []
  const logs = []
  /** pid -> when it was SIGKILLed. */
  const killedAt = new Map()
  const startWorker = (i) => {
    const log = path.join(dir, `worker-${i}-${logs.length}.log`)
    logs.push(log)
    const child = spawn(process.execPath, [__filename, 'worker', server.url, keyPrefix, log], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
    children[i] = child
  }
  for (let i = 0; i < workers; i++) startWorker(i)
  let current = server
  const stopFaults = []
  const every = (ms, fault) => {
    let stopped = false
    const loop = (async () => {
      while (!stopped) {
        await sleep(ms)
        if (!stopped) await fault()
      }
    })()
    stopFaults.push(async () => {
      stopped = true
      await loop
    })
  }
  if (faults.includes('kill-workers')) {
    every(400, async () => {
      const i = Math.floor(Math.random() * workers)
      killedAt.set(children[i].pid, Date.now())
      children[i].kill('SIGKILL')
      startWorker(i)
    })
  }
  if (faults.includes('pause')) {
    every(1500, async () => {
      current.kill('SIGSTOP')
      await sleep(600)
      current.kill('SIGCONT')
    })
  }
  if (faults.includes('restart')) {
    every(2000, async () => {
      current.kill('SIGKILL')
      await sleep(100)
      current = await startRedis({ port: current.port, dir, args: ['--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'] })
    })
  }
  if (faults.includes('clear')) {
    const clearing = spawn(process.execPath, [__filename, 'clearer', server.url, keyPrefix], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
    stopFaults.push(async () => {
      clearing.kill('SIGKILL')
    })
  }
  // Enqueue while the faults run; every id handed back is acknowledged.
  const ackLog = path.join(dir, 'acked.log')
  const env = { ...process.env, NODE_OPTIONS: '', FALLBACK_MECHANISMS_REDIS_URL: server.url, FALLBACK_MECHANISMS_REDIS_PREFIX: keyPrefix }
  const making = spawn(process.execPath, [__filename, 'producer', String(jobs), ackLog], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] })
  const made = await new Promise((resolve) => making.once('exit', resolve))
  if (made !== 0) throw new Error(`the producer exited with ${made}`)
  const acked = new Map()
  for (const line of fs.readFileSync(ackLog, 'utf8').split('\n')) {
    const [id, n] = line.split(' ')
    if (id) acked.set(id, Number(n))
  }
  // Let the faults run on while the workers catch up, then stop them and
  // let the work finish.
  await sleep(4000)
  for (const stop of stopFaults) await stop()
  /** Each job's runs that reached their end: [{ pid, at }], and how many runs began. */
  const ran = () => {
    const ends = new Map()
    let started = 0
    for (const log of logs) {
      if (!fs.existsSync(log)) continue
      for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
        const [kind, n, pid, at] = line.split(' ')
        if (kind === 's') started++
        if (kind === 'e') ends.set(Number(n), [...(ends.get(Number(n)) || []), { pid: Number(pid), at: Number(at) }])
      }
    }
    return { ends, started }
  }
  const deadline = Date.now() + 120_000
  for (;;) {
    let done = false
    try {
      // Every job ran to its end (a kept one must have reached the server
      // first), and nothing is left to run.
      const stats = observer.getStats()
      done = ran().ends.size >= jobs && stats.pending + stats.processing === 0
    } catch {}
    if (done || Date.now() > deadline) break
    await sleep(250)
  }
  // A last look once nothing moves: whatever is still running finishes.
  await sleep(1500)
  for (const child of children) child.kill('SIGKILL')
  const { ends, started } = ran()
  const held = new Map()
  let offset = 0
  for (;;) {
    const page = observer.getAll({ offset, limit: 1000 })
    for (const job of page) held.set(job.id, job)
    if (page.length < 1000) break
    offset += page.length
  }
  let lost = 0
  let stuck = 0
  for (const [id, n] of acked) {
    const job = held.get(id)
    if (!job && !ends.has(n)) lost++
    else if (!ends.has(n) || (job && job.status !== 'completed')) stuck++
  }
  const heldTwice = held.size - new Set([...held.values()].map((job) => job.payload.n)).size
  // A run to the end followed by another is explained when its worker was
  // killed within a second of that end (before its outcome was recorded).
  let duplicated = Math.max(0, heldTwice)
  let rerunAfterKill = started - [...ends.values()].reduce((sum, runs) => sum + runs.length, 0)
  for (const runs of ends.values()) {
    runs.sort((a, b) => a.at - b.at)
    for (let i = 1; i < runs.length; i++) {
      const killed = killedAt.get(runs[i - 1].pid)
      if (killed !== undefined && killed - runs[i - 1].at < 1000) rerunAfterKill++
      else {
        duplicated++
        if (process.env.FAULTS_DEBUG) {
          const n = [...ends].find(([, r]) => r === runs)[0]
          const job = [...held.values()].find((j) => j.payload.n === n)
          console.error('duplicate', n, JSON.stringify(runs), job && JSON.stringify({ retryCount: job.retryCount, lastError: job.lastError, status: job.status, createdAt: job.createdAt }))
        }
      }
    }
  }
  await current.stop({ keepDir: true })
  return { name, jobs: acked.size, lost, duplicated, stuck, rerun: rerunAfterKill, seconds: Math.round((Date.now() - began) / 100) / 10 }
}
