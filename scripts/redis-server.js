'use strict'

// A real redis-server for tests and the benchmark: Debian's package,
// installed when missing; each server on 127.0.0.1, a free port and a
// temporary directory of its own, stopped by its process id (also when the
// test or the process using it fails). `startRedis({ tls: true })` serves
// TLS only, on a certificate signed by a CA of its own that the `openssl`
// command makes (installed when missing). `node scripts/redis-server.js
// --ensure` only installs both.

const { execFileSync, spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const SERVER = process.env.REDIS_SERVER_PATH || 'redis-server'

function installed(command, versionFlag) {
  return spawnSync(command, [versionFlag], { stdio: 'ignore' }).status === 0
}

function aptInstall(name) {
  // All of it on stderr: the benchmark's Redis process answers on stdout (JSON).
  console.error(`${name} is missing: installing Debian's package`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const stdio = ['ignore', 2, 2]
  execFileSync('apt-get', ['update', '-qq'], { stdio, env })
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', name], { stdio, env })
}

function ensureRedis() {
  if (installed(SERVER, '--version')) return
  aptInstall('redis-server')
  // The package starts a system-wide server on port 6379; tests never use it.
  spawnSync('service', ['redis-server', 'stop'], { stdio: 'ignore' })
}

function ensureOpenssl() {
  if (!installed('openssl', 'version')) aptInstall('openssl')
}

const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })

/** A new self-signed CA in `dir`: `{ cert, key }`, the paths of its PEM files. */
function certificateAuthority(dir, name = 'ca') {
  ensureOpenssl()
  const cert = path.join(dir, `${name}.crt`)
  const key = path.join(dir, `${name}.key`)
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=fallback-mechanisms test ${name}`, '-keyout', key, '-out', cert)
  return { cert, key }
}

/** A certificate for 127.0.0.1 and localhost signed by `ca`: `{ cert, key }`. */
function serverCertificate(dir, ca) {
  const cert = path.join(dir, 'server.crt')
  const key = path.join(dir, 'server.key')
  const request = path.join(dir, 'server.csr')
  const extensions = path.join(dir, 'server.ext')
  fs.writeFileSync(extensions, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', request)
  openssl('x509', '-req', '-days', '2', '-set_serial', '1', '-in', request, '-CA', ca.cert, '-CAkey', ca.key, '-extfile', extensions, '-out', cert)
  return { cert, key }
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
 * `options.dir` a directory (its data), `options.tls` serves TLS only
 * (`rediss://`; clients show no certificate). Resolves with `{ url, port,
 * pid, dir, ca, stop(), kill(signal) }`; `ca` is the path of the PEM file
 * of the CA that signed a TLS server's certificate.
 */
async function startRedis(options = {}) {
  ensureRedis()
  const dir = options.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-redis-'))
  const port = options.port || (await freePort())
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
  let ca
  if (options.tls) {
    ca = certificateAuthority(dir)
    const { cert, key } = serverCertificate(dir, ca)
    args.splice(0, 2, '--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', ca.cert, '--tls-auth-clients', 'no')
  }
  const child = spawn(SERVER, [...args, ...(options.args || [])], { stdio: 'ignore' })
  const server = {
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    port,
    ca: ca && ca.cert,
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

module.exports = { ensureRedis, startRedis, certificateAuthority, freePort }

if (require.main === module && process.argv.includes('--ensure')) {
  ensureRedis()
  ensureOpenssl()
}
