'use strict'

// A real redis-server for tests and the benchmark: Debian's package,
// installed when missing; each server on 127.0.0.1, a free port and a
// temporary directory of its own, stopped by its process id (also when the
// test or the process using it fails). `node scripts/redis-server.js
// --ensure` only installs it.

const { execFileSync, spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const SERVER = process.env.REDIS_SERVER_PATH || 'redis-server'

function installed() {
  return spawnSync(SERVER, ['--version'], { stdio: 'ignore' }).status === 0
}

function ensureRedis() {
  if (installed()) return
  console.log("redis-server is missing: installing Debian's package")
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'redis-server'], { stdio: 'inherit', env })
  // The package starts a system-wide server on port 6379; tests never use it.
  spawnSync('service', ['redis-server', 'stop'], { stdio: 'ignore' })
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

function answers(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.end()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

const running = new Set()
process.on('exit', () => {
  for (const server of running) server.kill('SIGKILL')
})

/**
 * Starts a server; `options.args` are extra redis-server arguments
 * (`['--appendonly', 'yes']`), `options.port` reuses a port (a restart),
 * `options.dir` a directory (its data). Resolves with `{ url, port, pid,
 * dir, stop(), kill(signal) }`.
 */
async function startRedis(options = {}) {
  ensureRedis()
  const dir = options.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-redis-'))
  const port = options.port || (await freePort())
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
  const child = spawn(SERVER, [...args, ...(options.args || [])], { stdio: 'ignore' })
  const server = {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    dir,
    kill(signal = 'SIGKILL') {
      try {
        process.kill(child.pid, signal)
      } catch {}
    },
    async stop({ keepDir = false } = {}) {
      running.delete(child)
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        server.kill('SIGKILL')
        await exited
      }
      if (!keepDir && !options.dir) fs.rmSync(dir, { recursive: true, force: true })
    },
  }
  running.add(child)
  const deadline = Date.now() + 10_000
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await server.stop()
      throw new Error(`redis-server did not start on port ${port}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return server
}

module.exports = { ensureRedis, startRedis }

if (require.main === module && process.argv.includes('--ensure')) ensureRedis()
