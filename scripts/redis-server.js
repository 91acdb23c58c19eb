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

const CLI = process.env.REDIS_CLI_PATH || 'redis-cli'

/** `redis-cli -p port args...`, its reply as text. */
function cli(port, ...args) {
  return execFileSync(CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Whether nothing listens on `port` (a cluster node's bus port must be free too). */
function isFree(port) {
  return new Promise((resolve) => {
    const probe = net.createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

/** A free port whose cluster bus port (port + 10000) is free as well. */
async function freeClusterPort(taken) {
  for (;;) {
    const port = await freePort()
    if (port + 10000 > 65535 || taken.has(port) || taken.has(port + 10000)) continue
    if (await isFree(port + 10000)) return port
  }
}

/**
 * Starts a Redis Cluster on 127.0.0.1: `masters` masters (default 3), each
 * with `replicas` replicas (default 1), on free ports (each node's bus port,
 * port + 10000, free too), every node in a temporary directory of its own
 * and stopped by its process id (also when the process using it fails).
 * `nodeTimeoutMs` is `cluster-node-timeout` (how soon a replica takes over
 * a master that stopped answering). Resolves once every slot is served and
 * every replica is in sync, with `{ url, urls, nodes, masterOf(key), stop() }`:
 * `url` names one node (the others are discovered), `nodes` are the
 * `startRedis` servers, `masterOf(key)` the node serving the key's slot now.
 */
async function startRedisCluster({ masters = 3, replicas = 1, nodeTimeoutMs = 2000, args = [] } = {}) {
  ensureRedis()
  const total = masters * (1 + replicas)
  const taken = new Set()
  const nodes = []
  const stop = () => Promise.all(nodes.map((node) => node.stop()))
  try {
    for (let i = 0; i < total; i++) {
      const port = await freeClusterPort(taken)
      taken.add(port)
      taken.add(port + 10000)
      const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs)]
      nodes.push(await startRedis({ port, args: [...clusterArgs, ...args] }))
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`)
    execFileSync(CLI, ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], { stdio: 'ignore' })
    const deadline = Date.now() + 30_000
    while (!nodes.every((node) => settled(node, replicas))) {
      if (Date.now() > deadline) throw new Error('the Redis Cluster did not come up within 30 s')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } catch (error) {
    await stop()
    throw error
  }
  return {
    url: nodes[0].url,
    urls: nodes.map((node) => node.url),
    nodes,
    masterOf: (key) => masterOf(nodes, key),
    stop,
  }
}

/** Whether `node` sees every slot served and, when it is a replica, is in sync with its master. */
function settled(node, replicas) {
  try {
    if (!cli(node.port, 'cluster', 'info').includes('cluster_state:ok')) return false
    const replication = cli(node.port, 'info', 'replication')
    if (replication.includes('role:slave')) return replication.includes('master_link_status:up') && !replication.includes('master_sync_in_progress:1')
    return replicas === 0 || /connected_slaves:[1-9]/.test(replication)
  } catch {
    return false
  }
}

/** The node of `nodes` that is the master serving `key`'s slot, as one of the live nodes sees it. */
function masterOf(nodes, key) {
  for (const node of nodes) {
    try {
      const port = masterPort(node.port, key)
      if (port) return nodes.find((candidate) => candidate.port === port)
    } catch {}
  }
  return undefined
}

/** The port of the master serving `key`'s slot, as the cluster node on `port` sees it. */
function masterPort(port, key) {
  const slot = Number(cli(port, 'cluster', 'keyslot', key).trim())
  for (const line of cli(port, 'cluster', 'nodes').split('\n')) {
    const [, address, flags, , , , , state, ...ranges] = line.split(' ')
    if (!flags || !flags.includes('master') || flags.includes('fail') || state !== 'connected') continue
    const serves = ranges.some((range) => {
      const [from, to = from] = range.split('-').map(Number)
      return slot >= from && slot <= to
    })
    if (serves) return Number(address.split('@')[0].split(':')[1])
  }
  return undefined
}

module.exports = { ensureRedis, startRedis, startRedisCluster, masterPort, certificateAuthority, freePort }

if (require.main === module && process.argv.includes('--ensure')) {
  ensureRedis()
  ensureOpenssl()
}
