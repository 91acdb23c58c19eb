'use strict'

// npm run test:nextjs: the package the way an app gets it. Packs the library,
// installs the tarball into examples/nextjs, runs `next build` and
// `next start` on 127.0.0.1, exercises every scenario over HTTP, then opens
// /fallbacks in headless Chromium and checks that the numbers it shows are
// the state the scenarios created. Installs what it needs itself (the
// example's npm packages, Debian's chromium when it is missing). The steps it
// shares with scripts/test-nextjs-redis.js are in scripts/nextjs-app.js; a
// build made from the same package and sources is used again.

const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { app, run, checks, waitFor, prepareApp, startApp, stopApps } = require('./nextjs-app')

const results = path.join(app, 'test-results')
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

function ensureChromium() {
  if (fs.existsSync(CHROMIUM)) return
  console.log('Chromium is missing: installing Debian\'s package')
  run('apt-get', ['update', '-qq'])
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
}

async function main() {
  prepareApp()
  ensureChromium()

  const { check, report } = checks()
  try {
    const server = await startApp('next', { FALLBACKS_WORKER_INTERVAL_MS: '1000' })
    const { base, call } = server
    const simulate = (switches) => call('/api/simulate', switches)

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
        assert.deepEqual(state.storage, { backend: 'memory', location: null, reachable: true, lastError: null, lastErrorAt: null, localJobs: 0 })
        assert.deepEqual([await text('storage-backend'), await text('storage-reachable'), await text('storage-local-jobs'), await text('storage-last-error')], ['Memory', 'yes', '0', 'none'])
        assert.ok(state.cache.size >= 2 && state.cache.hits >= 2, 'the scenarios left cached answers and hits')
        assert.ok(state.queue.completed >= 1, 'the worker completed the analytics job')
        fs.mkdirSync(results, { recursive: true })
        await page.screenshot({ path: path.join(results, 'fallbacks.png'), fullPage: true })
      } finally {
        await browser.close()
      }
    })
  } finally {
    await stopApps()
  }
  report('next.js')
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
