'use strict'

// npm run test:nextjs: the package the way an app gets it. Packs the library,
// installs the tarball into examples/nextjs, runs `next build` and
// `next start` on 127.0.0.1, exercises every scenario over HTTP (with the
// streaming chat: Claude, Haiku while Claude cools down, the cache), then in
// headless Chromium sends a message on /chat and watches the answer stream
// in, and opens /fallbacks: the numbers it shows are the state the
// scenarios created, the chart draws what this instance counted, Claude's
// cooldown is listed. Installs what it needs itself (the
// example's npm packages, Debian's chromium when it is missing). The steps it
// shares with scripts/test-nextjs-redis.js are in scripts/nextjs-app.js; a
// build made from the same package and sources is used again.

const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { app, run, checks, waitFor, prepareApp, startApp, stopApps, testIds, chatOn } = require('./nextjs-app')

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

    // The streaming chat (/api/chat): Claude, Haiku standing in, the cache.
    const world = () => call('/api/simulate')
    const chat = (prompt) => chatOn(base, { prompt, userId: 'u5' })
    const chatCalls = async () => {
      const { calls } = await world()
      return { claude: calls.claude, haiku: calls.haiku }
    }
    let claudeAnswer = null

    await check('chat: Claude streams its answer in chunks, and the whole answer is cached', async () => {
      await simulate({ claude: 'ok', haiku: 'ok' })
      const before = await chatCalls()
      const answer = await chat('a first home')
      assert.equal(answer.header('x-fallback-type'), 'none')
      assert.equal(answer.header('x-alternative'), null)
      assert.match(answer.text, /^Happy to help with a first home\. /)
      assert.ok(answer.chunks > 1, `the body came in ${answer.chunks} chunk(s)`)
      assert.ok(answer.spreadMs >= 200, `the chunks came over ${answer.spreadMs} ms`)
      assert.deepEqual(await chatCalls(), { claude: before.claude + 1, haiku: before.haiku })
      const cached = await call('/api/manage', { action: 'cache.get', prompt: 'a first home', modelId: 'chat:claude>haiku' })
      assert.equal(cached.entry.response, answer.text)
      claudeAnswer = answer.text
    })

    await check('chat: Claude rate-limited, Haiku answers; within the cooldown Claude is not called at all', async () => {
      await simulate({ claude: 'rate-limited' })
      const before = await chatCalls()
      const first = await chat('moving house')
      assert.equal(first.header('x-fallback-type'), 'alternative')
      assert.equal(first.header('x-alternative'), 'haiku')
      assert.match(first.text, /^Quick take on moving house: /)
      assert.ok(first.chunks > 1, `the body came in ${first.chunks} chunk(s)`)
      assert.deepEqual(await chatCalls(), { claude: before.claude + 1, haiku: before.haiku + 1 })
      // Claude would answer now: only its cooldown keeps it out.
      await simulate({ claude: 'ok' })
      const second = await chat('a garden flat')
      assert.deepEqual([second.header('x-fallback-type'), second.header('x-alternative'), second.header('x-benched')], ['alternative', 'haiku', 'claude'])
      assert.match(second.text, /^Quick take on a garden flat: /)
      assert.deepEqual(await chatCalls(), { claude: before.claude + 1, haiku: before.haiku + 2 }, 'Claude was not called')
      const { cooldowns, breakers } = await call('/api/state')
      const claude = cooldowns.find((c) => c.name === 'claude')
      assert.ok(claude, JSON.stringify(cooldowns))
      assert.ok(claude.remainingMs > 0 && claude.remainingMs <= 60_000, `${claude.remainingMs} ms left of the 60 s Retry-After`)
      assert.match(claude.reason, /429/)
      const breaker = breakers.find((b) => b.name === 'claude')
      assert.deepEqual([breaker?.state, breaker?.cooldownUntil], ['open', claude.until])
      const shown = testIds(await (await fetch(`${base}/fallbacks`)).text())
      assert.equal(shown['cooldown-claude'], 'claude')
      assert.match(shown['cooldown-claude-left'], /^in \d+ s$/)
      assert.equal(shown['breaker-claude'], 'open')
    })

    await check('chat: both models failing, the cached answer is replayed as a stream, else the default', async () => {
      await simulate({ claude: 'down', haiku: 'down' })
      const before = await chatCalls()
      const replayed = await chat('a first home')
      assert.equal(replayed.header('x-fallback-type'), 'cache')
      assert.equal(replayed.text, claudeAnswer)
      const fallback = await chat('never asked before')
      assert.equal(fallback.header('x-fallback-type'), 'default')
      assert.match(fallback.text, /busy/)
      // Claude is still cooling down: only Haiku was tried, twice.
      assert.deepEqual(await chatCalls(), { claude: before.claude, haiku: before.haiku + 2 })
      await simulate({ claude: 'ok', haiku: 'ok' })
    })

    await check('summaries: a user\'s daily token budget, spent, refuses the next call; /fallbacks lists the limits and the budget', async () => {
      const summarize = () => call('/api/summary', { listing: 'a mews house', userId: 'u6' })
      const before = (await world()).calls
      // 400 tokens a summary against the free plan's 1,000 a day: the third
      // starts with 800 spent and takes the spend past the budget.
      for (let i = 0; i < 3; i++) {
        const answered = await summarize()
        assert.deepEqual([answered.success, answered.metadata.fallbackType, answered.text], [true, undefined, 'a mews house: a bright, well-kept home close to shops and transport, priced in line with the street.'])
      }
      // The charge is stored after the answer, without the caller waiting.
      await waitFor(async () => (await call('/api/state')).budgets.find((b) => b.key === 'user:u6')?.tokens >= 1000, { timeoutMs: 15_000, what: 'the budget charged' })
      const refused = await summarize()
      assert.deepEqual([refused.metadata.fallbackType, refused.metadata.overBudget], ['cache', 'user:u6'])
      const after = (await world()).calls
      assert.deepEqual([after['gpt-4o'] - before['gpt-4o'], after['gpt-4o-mini'] - before['gpt-4o-mini']], [3, 0], 'the refused call called no model')
      const { budgets, limits, sharedBreakers } = await call('/api/state')
      const budget = budgets.find((b) => b.key === 'user:u6')
      assert.deepEqual([budget.tokens, budget.tokenBudget, budget.per], [1200, 1000, 'day'])
      assert.equal(budget.resetsAt, new Date(Math.ceil((Date.now() + 1) / 86_400_000) * 86_400_000).toISOString(), 'the next UTC midnight')
      assert.deepEqual(limits.find((l) => l.name === 'gpt-4o'), { name: 'gpt-4o', requests: 3, requestsPerMinute: 500, tokens: 1200, tokensPerMinute: 30_000, concurrent: 0, concurrency: null })
      assert.deepEqual(sharedBreakers.map((b) => [b.name, b.state, b.probeHeldBy]), [['gpt-4o', 'closed', null]])
      const shown = testIds(await (await fetch(`${base}/fallbacks`)).text())
      assert.deepEqual(
        [shown['budget-user:u6-tokens'], shown['limit-gpt-4o-requests'], shown['limit-gpt-4o-tokens'], shown['shared-breaker-gpt-4o'], shown['shared-breaker-gpt-4o-probe']],
        ['1,200 / 1,000', '3 / 500', '1,200 / 30,000', 'closed', 'nobody'],
      )
      assert.equal(shown['budget-user:u6-resets'], `${budget.resetsAt.slice(0, 10)} 00:00 UTC`)
      // The chat's models are rate-limited too (well above what it sends).
      assert.match(shown['limit-claude-requests'], /^\d+ \/ 600$/)
    })

    await check('/fallbacks shows the state the scenarios created', async () => {
      const { chromium } = require(path.join(app, 'node_modules', 'playwright-core'))
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      })
      try {
        const page = await browser.newPage({ viewport: { width: 1100, height: 1100 } })

        // The chat page reads the streamed answer into the page as it comes.
        await page.goto(`${base}/chat`)
        await page.getByTestId('chat-input').fill('selling a flat')
        await page.getByTestId('chat-send').click()
        const turn = page.getByTestId('chat-turn').last()
        // Part of the answer is on the page while the rest is still coming.
        await page.waitForFunction(() => {
          const streaming = document.querySelector('[data-testid="chat-turn"][data-state="streaming"] [data-testid="chat-answer"]')
          return streaming !== null && streaming.textContent.trim().split(/\s+/).length >= 2
        })
        await turn.and(page.locator('[data-state="done"]')).waitFor({ timeout: 15_000 })
        const answer = (await turn.getByTestId('chat-answer').textContent()).trim()
        assert.match(answer, /selling a flat/)
        assert.ok(Number(await turn.getByTestId('chat-chunks').textContent()) > 1)
        // Claude is still cooling down (60 s) unless this ran late: Haiku or Claude answered.
        assert.match(await turn.getByTestId('chat-source').getAttribute('data-fallback-type'), /^(none|alternative)$/)
        fs.mkdirSync(results, { recursive: true })
        await page.locator('main').screenshot({ path: path.join(results, 'chat.png') })

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
        assert.deepEqual(state.storage, { backend: 'memory', location: null, reachable: true, lastError: null, lastErrorAt: null, localJobs: 0, missingJobs: 0, setAsideWrites: 0, evictionPolicy: null, localCopy: null, redisMode: null })
        assert.deepEqual([await text('storage-backend'), await text('storage-reachable'), await text('storage-local-jobs'), await text('storage-last-error')], ['Memory', 'yes', '0', 'none'])
        assert.ok(state.cache.size >= 2 && state.cache.hits >= 2, 'the scenarios left cached answers and hits')
        assert.ok(state.queue.completed >= 1, 'the worker completed the analytics job')
        // The chart: a bar for every minute and type with fallbacks, adding
        // up to what this instance counted; every type the scenarios caused.
        const chart = page.getByTestId('fallback-chart')
        assert.equal(await chart.getAttribute('role'), 'img')
        assert.equal(await chart.locator('title').first().textContent(), 'Fallbacks per minute over the last hour, by type')
        const bars = await chart.locator('rect[data-count]').evaluateAll((rects) => rects.map((r) => [r.dataset.type, Number(r.dataset.count)]))
        const drawn = {}
        for (const [type, n] of bars) drawn[type] = (drawn[type] ?? 0) + n
        const counted = Object.fromEntries(Object.entries(state.timeline.totals).filter(([, n]) => n > 0))
        assert.deepEqual(drawn, counted)
        for (const type of ['alternative', 'cache', 'default', 'queue', 'skip']) {
          assert.ok(counted[type] >= 1, `the chart shows ${type} fallbacks`)
          assert.equal(await text(`timeline-total-${type}`), String(counted[type]))
        }
        assert.ok(counted.alternative >= 2 && counted.skip >= 3, JSON.stringify(counted))
        // Claude's cooldown, and its breaker shown open until then.
        assert.equal(await text('cooldown-claude'), 'claude')
        assert.equal(await text('breaker-claude'), 'open')
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
