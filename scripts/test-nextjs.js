'use strict'

// npm run test:nextjs: the package the way an app gets it. Packs the library,
// installs the tarball into examples/nextjs, runs `next build` and
// `next start` on 127.0.0.1, exercises every scenario over HTTP, then opens
// /fallbacks in headless Chromium and checks that the numbers it shows are
// the state the scenarios created. Installs what it needs itself (the
// example's npm packages, Debian's chromium when it is missing).

const assert = require('node:assert/strict')
const { execFileSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')

const root = path.join(__dirname, '..')
const app = path.join(root, 'examples', 'nextjs')
const results = path.join(app, 'test-results')
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

let passed = 0
let failed = 0

function run(command, args, options = {}) {
  console.log(`$ ${command} ${args.join(' ')}`)
  return execFileSync(command, args, { stdio: 'inherit', ...options })
}

async function check(name, fn) {
  try {
    await fn()
    passed++
    console.log(`ok - ${name}`)
  } catch (error) {
    failed++
    console.log(`not ok - ${name}\n${error.stack}`)
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
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

function ensureChromium() {
  if (fs.existsSync(CHROMIUM)) return
  console.log('Chromium is missing: installing Debian\'s package')
  run('apt-get', ['update', '-qq'])
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
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

async function main() {
  install()
  run('npx', ['next', 'build'], { cwd: app })
  ensureChromium()

  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const server = spawn('npx', ['next', 'start', '-H', '127.0.0.1', '-p', String(port)], {
    cwd: app,
    env: { ...process.env, FALLBACKS_WORKER_INTERVAL_MS: '1000' },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  })
  const stop = () => {
    try {
      process.kill(-server.pid, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  process.on('exit', stop)

  const call = async (route, body) => {
    const response = await fetch(`${base}${route}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return response.json()
  }
  const simulate = (switches) => call('/api/simulate', switches)

  try {
    await waitFor(() => call('/api/state'), { timeoutMs: 60_000, what: 'next start' })

    await check('blog post: fresh from the model, then cached, then the default', async () => {
      await simulate({ model: true })
      const fresh = await call('/api/blog', { prompt: 'real estate', userId: 'u1' })
      assert.equal(fresh.success, true)
      assert.equal(fresh.data.title, 'A guide to real estate')
      assert.equal(fresh.message, 'Operation completed successfully')
      await simulate({ model: false })
      const cached = await call('/api/blog', { prompt: 'real estate', userId: 'u1' })
      assert.deepEqual(cached.data, fresh.data)
      assert.equal(cached.metadata.fallbackType, 'cache')
      assert.equal(cached.message, "We encountered an issue, but don't worry! We're showing you a previous result while we work on this.")
      const fallback = await call('/api/blog', { prompt: 'gardening', userId: 'u1' })
      assert.equal(fallback.metadata.fallbackType, 'default')
      assert.equal(fallback.data.title, 'Blog Post')
      await simulate({ model: true })
    })

    await check('publishing: a failing channel is queued, the rest published', async () => {
      await simulate({ downChannels: ['linkedin'] })
      const result = await call('/api/publish', { prompt: 'open house', userId: 'u2', channels: ['facebook', 'linkedin', 'x'] })
      assert.deepEqual({ published: result.published, queued: result.queued, skipped: result.skipped }, { published: 3, queued: 1, skipped: 0 })
      await simulate({ downChannels: [] })
    })

    await check('social: Facebook skipped on failure, then skipped up front', async () => {
      await simulate({ facebook: false })
      for (let i = 0; i < 3; i++) {
        const skipped = await call('/api/social', { contentId: `c${i}`, userId: 'u3' })
        assert.equal(skipped.metadata.fallbackType, 'skip')
      }
      const before = (await call('/api/simulate')).calls.facebook
      const upFront = await call('/api/social', { contentId: 'c9', userId: 'u3' })
      assert.deepEqual(upFront, { success: true, message: 'Facebook integration temporarily disabled due to repeated failures', skipped: true })
      assert.equal((await call('/api/simulate')).calls.facebook, before, 'Facebook was not called')
      await simulate({ facebook: true })
    })

    await check('analytics: queued while down, processed by the background worker', async () => {
      await simulate({ analytics: false })
      const queued = await call('/api/analytics', { contentId: 'post-7', userId: 'u4' })
      await simulate({ analytics: true })
      assert.equal(queued.metadata.fallbackType, 'queue')
      assert.match(queued.metadata.jobId, /^job_\d+_[0-9a-z]{9}$/)
      // A worker that picked the job up while analytics was still down
      // retries it a minute later; allow for that.
      await waitFor(async () => (await call('/api/simulate')).synced.includes('post-7'), { timeoutMs: 75_000, what: 'the worker' })
    })

    await check('management calls: cache set/get/delete, queue and failure stats', async () => {
      const set = await call('/api/manage', { action: 'cache.set', prompt: 'manual', modelId: 'm', response: { a: 1 }, ttl: 60_000 })
      assert.equal(set.ok, true)
      const got = await call('/api/manage', { action: 'cache.get', prompt: 'manual', modelId: 'm' })
      assert.deepEqual(got.entry.response, { a: 1 })
      await call('/api/manage', { action: 'cache.delete', prompt: 'manual', modelId: 'm' })
      assert.equal((await call('/api/manage', { action: 'cache.get', prompt: 'manual', modelId: 'm' })).entry, null)
      const bad = await call('/api/manage', { action: 'cache.set', prompt: 'p', modelId: 'm', response: 1, ttl: -1 })
      assert.deepEqual([bad.ok, bad.code], [false, 'ERR_OUT_OF_RANGE'])
      const failures = await call('/api/manage', { action: 'failures.stats', service: 'facebook' })
      assert.equal(failures.stats.facebook.count, 3)
      assert.equal(failures.skip, true)
    })

    await check('/fallbacks shows the state the scenarios created', async () => {
      const { chromium } = require(path.join(app, 'node_modules', 'playwright-core'))
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      })
      try {
        const page = await browser.newPage({ viewport: { width: 1100, height: 1100 } })
        await page.goto(`${base}/fallbacks`)
        const state = await call('/api/state')
        const text = async (id) => (await page.getByTestId(id).textContent()).trim()
        assert.equal(await text('cache-size'), String(state.cache.size))
        assert.equal(await text('cache-hits'), String(state.cache.hits))
        assert.equal(await text('cache-misses'), String(state.cache.misses))
        assert.equal(await text('queue-completed'), String(state.queue.completed))
        assert.equal(await text('queue-pending'), String(state.queue.pending))
        assert.equal(await text('failures-facebook'), '3')
        assert.match(await page.locator('[data-service="facebook"]').textContent(), /skipped for now/)
        assert.ok(state.cache.size >= 2 && state.cache.hits >= 2, 'the scenarios left cached answers and hits')
        assert.ok(state.queue.completed >= 1, 'the worker completed the analytics job')
        fs.mkdirSync(results, { recursive: true })
        await page.screenshot({ path: path.join(results, 'fallbacks.png'), fullPage: true })
      } finally {
        await browser.close()
      }
    })
  } finally {
    stop()
  }
  console.log(`\nnext.js: ${passed} passed, ${failed} failed`)
  process.exitCode = failed ? 1 : 0
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
