'use strict'

// What the end-to-end scripts on the Next.js example share
// (scripts/test-nextjs.js, scripts/test-nextjs-redis.js): installing the
// packed library into examples/nextjs and building the app once, starting
// `next start` instances on free ports (each stopped by its process id, also
// when a check fails or the script is interrupted), calling their routes,
// reading the numbers /fallbacks shows, and counting checks.

const assert = require('node:assert/strict')
const { execFileSync, spawn } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')
const { freePort } = require('./redis-server')

const root = path.join(__dirname, '..')
const app = path.join(root, 'examples', 'nextjs')
/** Written after a build: what it was built from (see `prepareApp`). */
const STAMP = path.join(app, '.next', 'fallback-mechanisms-build.json')

function run(command, args, options = {}) {
  console.log(`$ ${command} ${args.join(' ')}`)
  return execFileSync(command, args, { stdio: 'inherit', ...options })
}

/** Named checks: a failing one is reported and counted, the rest still run. */
function checks() {
  let passed = 0
  let failed = 0
  return {
    async check(name, fn) {
      try {
        await fn()
        passed++
        console.log(`ok - ${name}`)
      } catch (error) {
        failed++
        console.log(`not ok - ${name}\n${error.stack}`)
      }
    },
    /** Prints the tally and sets the exit code. */
    report(label) {
      console.log(`\n${label}: ${passed} passed, ${failed} failed`)
      process.exitCode = failed ? 1 : 0
    },
  }
}

async function waitFor(fn, { timeoutMs, what }) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const value = await fn()
      if (value) return value
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** The files under `dir`, recursively, sorted. */
function filesUnder(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name))
    .sort()
}

/**
 * What a build of the app is made of: the package as `npm pack` would pack
 * it now (its integrity, scripts not run) and the app's own sources and
 * lockfile.
 */
function fingerprint() {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
  )[0]
  const hash = crypto.createHash('sha256')
  const sources = [...filesUnder(path.join(app, 'src')), ...['next.config.ts', 'tsconfig.json', 'package.json', 'package-lock.json'].map((f) => path.join(app, f))]
  for (const file of sources) hash.update(path.relative(app, file)).update('\0').update(fs.readFileSync(file)).update('\0')
  return { package: packed.integrity, app: hash.digest('hex') }
}

function install() {
  const packed = execFileSync('npm', ['pack', '--silent'], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()
  const tarball = path.join(root, packed)
  run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: app })
  run('npm', ['install', '--no-save', '--no-audit', '--no-fund', tarball], { cwd: app })
  fs.rmSync(tarball)
  // The app must use the packed binary, not the repository's.
  const installed = path.join(app, 'node_modules', 'fallback-mechanisms')
  assert.ok(!fs.lstatSync(installed).isSymbolicLink(), 'installed from the tarball, not linked')
  assert.ok(fs.readdirSync(installed).some((f) => f.endsWith('.linux-x64-gnu.node')), 'the tarball carries the prebuilt binary')
}

/**
 * Packs the library, installs the tarball into the app and runs `next
 * build`, unless the last build was made from what is here now (the
 * fingerprint in its stamp matches): then that build is used as it is, so
 * the second script in a run does not build again.
 */
function prepareApp() {
  let built = null
  try {
    built = JSON.parse(fs.readFileSync(STAMP, 'utf8'))
  } catch {
    // never built, or the build was replaced
  }
  const now = built && fingerprint()
  if (built && built.package === now.package && built.app === now.app) {
    console.log('The app was built from this package and these sources: using that build')
    return { reused: true }
  }
  install()
  run('npx', ['next', 'build'], { cwd: app })
  fs.writeFileSync(STAMP, JSON.stringify(fingerprint()))
  return { reused: false }
}

/** Servers started here, stopped at exit whatever happened. */
const servers = new Set()

function killGroup(pid, signal) {
  try {
    // The server runs in a process group of its own, led by it.
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

process.on('exit', () => {
  for (const server of servers) killGroup(server.pid, 'SIGKILL')
})
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  // Interrupted: exit (the handler above stops the servers) rather than die
  // without running it.
  process.once(signal, () => process.exit(code))
}

/**
 * Starts `next start` on 127.0.0.1 and a free port with `env` added, and
 * waits until it answers. Its output is prefixed with `[label]`. Resolves
 * with `{ label, base, pid, call(route, body), stop() }`.
 */
async function startApp(label, env = {}) {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const next = path.join(app, 'node_modules', 'next', 'dist', 'bin', 'next')
  const child = spawn(process.execPath, [next, 'start', '-H', '127.0.0.1', '-p', String(port)], {
    cwd: app,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on('line', (line) => console.log(`[${label}] ${line}`))
  }
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const server = {
    label,
    base,
    pid: child.pid,
    /** GET without a body, POST with one; the JSON answer. */
    async call(route, body) {
      const response = await fetch(`${base}${route}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      return response.json()
    },
    /** SIGTERM to its process group, SIGKILL after 5 s; resolves once it has exited. */
    async stop() {
      servers.delete(server)
      if (child.exitCode !== null || child.signalCode !== null) return
      killGroup(child.pid, 'SIGTERM')
      const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
  servers.add(server)
  const died = exited.then((code) => {
    throw new Error(`next start (${label}) exited with ${code} before answering`)
  })
  died.catch(() => {}) // after it has answered, an exit is stop()'s business
  await Promise.race([waitFor(() => server.call('/api/state'), { timeoutMs: 60_000, what: `next start (${label})` }), died])
  return server
}

/** Stops every server started here. */
function stopApps() {
  return Promise.all([...servers].map((server) => server.stop()))
}

/**
 * POSTs `body` to the example's streaming /api/chat at `base` and reads the
 * answer chunk by chunk as it arrives: resolves `{ text, chunks, spreadMs
 * (first chunk to last), header(name) }`.
 */
async function chatOn(base, body) {
  const response = await fetch(`${base}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8')
  const decoder = new TextDecoder()
  let text = ''
  const arrivals = []
  for await (const chunk of response.body) {
    arrivals.push(Date.now())
    text += decoder.decode(chunk, { stream: true })
  }
  text += decoder.decode()
  const spreadMs = arrivals.length ? arrivals.at(-1) - arrivals[0] : 0
  return { text, chunks: arrivals.length, spreadMs, header: (name) => response.headers.get(name) }
}

/** The text of each element with a `data-testid` in server-rendered HTML, by id. */
function testIds(html) {
  const values = {}
  for (const [, id, text] of html.matchAll(/data-testid="([^"]+)"[^>]*>([^<]*)</g)) values[id] = text.trim()
  return values
}

module.exports = { root, app, run, checks, waitFor, prepareApp, startApp, stopApps, testIds, chatOn }
