'use strict'

// npm run test:nextjs:redis: two instances of the example share one Redis.
// Starts a redis-server (scripts/redis-server.js) and two `next start`
// instances of examples/nextjs on free ports, both with
// FALLBACK_MECHANISMS_REDIS_URL and one fresh FALLBACK_MECHANISMS_REDIS_PREFIX:
// A runs no background worker (as a serverless instance), B does. Proves
// over HTTP that an answer cached through A serves B while B's model is
// down; that a job queued through A is run once by B's worker, and once by
// B's cron drain route; that three failures recorded through A make B skip
// Facebook up front; that a chat model rate-limited through A is benched on
// B too; and that /fallbacks shows the same numbers on both (not the chart:
// each instance counts its own fallbacks). Then, with the listing summaries'
// shared guards: that a user's budget spent through A refuses on B, that
// gpt-4o's breaker opened through A keeps B from calling it, that
// gpt-4o-mini's requests per minute used through A count on B, and that
// /fallbacks shows the same breakers, limits and budgets on both. With
// --cluster (npm run test:nextjs:cluster) the two share a Redis Cluster of 6
// nodes (3 masters, 3 replicas) instead, each given the URL of a different
// node.
// Uses the build scripts/test-nextjs.js made when nothing changed since
// (scripts/nextjs-app.js), and builds it otherwise. Every process it starts
// is stopped by its process id, also when a check fails.

const assert = require('node:assert/strict')
const { checks, waitFor, prepareApp, startApp, stopApps, testIds, chatOn } = require('./nextjs-app')
const { startRedis, startRedisCluster } = require('./redis-server')

const onCluster = process.argv.includes('--cluster')

const timings = []
async function timed(what, fn) {
  const started = Date.now()
  try {
    return await fn()
  } finally {
    timings.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
}

/** How often `value` occurs in `list`. */
const count = (list, value) => list.filter((item) => item === value).length

async function main() {
  const began = Date.now()
  const { reused } = await timed('build', () => prepareApp())
  const { check, report } = checks()
  let redis = null
  try {
    redis = await timed(onCluster ? 'cluster' : 'redis-server', () => (onCluster ? startRedisCluster() : startRedis()))
    const prefix = `nextjs-proof-${process.pid}-${Date.now().toString(36)}`
    // On a cluster, B names another node than A: either finds the rest.
    const urlOfB = onCluster ? redis.urls[1] : redis.url
    const port = new URL(redis.url).port
    const env = {
      FALLBACK_MECHANISMS_REDIS_URL: redis.url,
      FALLBACK_MECHANISMS_REDIS_PREFIX: prefix,
      FALLBACK_MECHANISMS_DB: '',
      FALLBACKS_WORKER_INTERVAL_MS: '200',
      CRON_SECRET: '',
    }
    const [a, b] = await timed('two next start', () =>
      Promise.all([
        startApp('A', { ...env, FALLBACKS_WORKER: 'off' }),
        startApp('B', { ...env, FALLBACK_MECHANISMS_REDIS_URL: urlOfB, FALLBACKS_WORKER: 'on' }),
      ]),
    )
    const world = (server) => server.call('/api/simulate')
    const simulate = (server, switches) => server.call('/api/simulate', switches)

    await timed('checks', async () => {
      await check(`both instances keep their state on the one Redis ${onCluster ? 'Cluster' : 'server'}, under the one prefix`, async () => {
        const [onA, onB] = await Promise.all([a, b].map(async (server) => (await server.call('/api/state')).storage))
        assert.deepEqual({ ...onA, location: null }, { ...onB, location: null })
        assert.deepEqual([onA.backend, onA.reachable, onA.lastError, onA.localJobs], ['redis', true, null, 0])
        assert.deepEqual([onA.missingJobs, onA.setAsideWrites, onA.evictionPolicy], [0, 0, 'noeviction'])
        assert.equal(onA.redisMode, onCluster ? 'cluster' : 'standalone')
        assert.ok(onA.location.includes(`:${port}`) && onA.location.endsWith(`(keyPrefix ${prefix})`), onA.location)
        assert.ok(onB.location.startsWith(urlOfB), onB.location)
      })

      await check('an answer cached through A serves B while B\'s model is down', async () => {
        await simulate(b, { model: false })
        const fresh = await a.call('/api/blog', { prompt: 'shared answers', userId: 'r1' })
        assert.equal(fresh.message, 'Operation completed successfully')
        const served = await b.call('/api/blog', { prompt: 'shared answers', userId: 'r1' })
        assert.equal(served.metadata.fallbackType, 'cache')
        assert.deepEqual(served.data, fresh.data)
        assert.equal((await world(b)).calls.model, 1, 'B asked its model, which failed')
        const uncached = await b.call('/api/blog', { prompt: 'never asked', userId: 'r1' })
        assert.equal(uncached.metadata.fallbackType, 'default')
        await simulate(b, { model: true })
      })

      await check('a job queued through A is run by B\'s worker, exactly once', async () => {
        await simulate(a, { analytics: false })
        const queued = await a.call('/api/analytics', { contentId: 'shared-job', userId: 'r2' })
        assert.equal(queued.metadata.fallbackType, 'queue')
        await waitFor(async () => (await world(b)).synced.includes('shared-job'), { timeoutMs: 15_000, what: 'B\'s worker' })
        // Several more of B's polls (every 200 ms): still once.
        await new Promise((resolve) => setTimeout(resolve, 1000))
        const [onA, onB] = [await world(a), await world(b)]
        assert.deepEqual([count(onB.synced, 'shared-job'), onB.calls.analytics], [1, 1], 'B ran it once')
        assert.deepEqual([onA.synced, onA.calls.analytics], [[], 1], 'A only failed the first call')
        const { userJobs } = await a.call('/api/manage', { action: 'queue.stats', userId: 'r2' })
        assert.deepEqual(userJobs.map((job) => [job.id, job.status, job.retryCount]), [[queued.metadata.jobId, 'completed', 0]])
      })

      await check('a job queued through A is run by B\'s cron drain route, exactly once', async () => {
        await simulate(b, { worker: false })
        const queued = await a.call('/api/analytics', { contentId: 'drained-job', userId: 'r3' })
        assert.equal(queued.metadata.fallbackType, 'queue')
        const drained = await b.call('/api/cron/drain')
        assert.deepEqual(
          { ...drained, elapsedMs: 0 },
          { processed: 1, completed: 1, failed: 0, deadLettered: 0, remaining: 0, stoppedBy: 'nothingDue', elapsedMs: 0, error: null },
        )
        const again = await a.call('/api/cron/drain')
        assert.deepEqual([again.processed, again.remaining], [0, 0], 'nothing left for A')
        assert.equal(count((await world(b)).synced, 'drained-job'), 1)
        assert.equal((await world(a)).synced.length, 0)
        const { userJobs } = await b.call('/api/manage', { action: 'queue.stats', userId: 'r3' })
        assert.deepEqual(userJobs.map((job) => [job.id, job.status, job.retryCount]), [[queued.metadata.jobId, 'completed', 0]])
        await simulate(b, { worker: true })
        await simulate(a, { analytics: true })
      })

      await check('three Facebook failures recorded through A make B skip it up front', async () => {
        await simulate(a, { facebook: false })
        for (let i = 0; i < 3; i++) {
          const skipped = await a.call('/api/social', { contentId: `c${i}`, userId: 'r4' })
          assert.equal(skipped.metadata.fallbackType, 'skip')
        }
        const upFront = await b.call('/api/social', { contentId: 'c9', userId: 'r4' })
        assert.deepEqual(upFront, { success: true, message: 'Facebook integration temporarily disabled due to repeated failures', skipped: true })
        assert.equal((await world(b)).calls.facebook, 0, 'B never called Facebook')
      })

      await check('Claude rate-limited through A is benched on B too: B\'s chat goes to Haiku without calling Claude', async () => {
        await simulate(a, { claude: 'rate-limited' })
        const onA = await chatOn(a.base, { prompt: 'shared cooldown', userId: 'r5' })
        assert.deepEqual([onA.header('x-fallback-type'), onA.header('x-alternative')], ['alternative', 'haiku'])
        const onB = await chatOn(b.base, { prompt: 'shared cooldown', userId: 'r5' })
        assert.deepEqual([onB.header('x-fallback-type'), onB.header('x-alternative'), onB.header('x-benched')], ['alternative', 'haiku', 'claude'])
        assert.ok(onB.chunks > 1, `B's answer came in ${onB.chunks} chunk(s)`)
        assert.deepEqual([(await world(a)).calls.claude, (await world(b)).calls.claude], [1, 0], 'only A called Claude')
        const [coolingOnA, coolingOnB] = await Promise.all([a, b].map(async (server) => (await server.call('/api/state')).cooldowns))
        assert.deepEqual(coolingOnA.map((c) => [c.name, c.until, c.reason]), coolingOnB.map((c) => [c.name, c.until, c.reason]))
        assert.deepEqual(coolingOnA.map((c) => c.name), ['claude'])
        await simulate(a, { claude: 'ok' })
      })

      await check('/fallbacks shows the same, shared numbers on A and B', async () => {
        const pages = await Promise.all([a, b].map(async (server) => testIds(await (await fetch(`${server.base}/fallbacks`)).text())))
        const shown = (values) => ({
          cacheSize: values['cache-size'],
          cacheHits: values['cache-hits'],
          cacheMisses: values['cache-misses'],
          pending: values['queue-pending'],
          completed: values['queue-completed'],
          failed: values['queue-failed'],
          facebook: values['failures-facebook'],
          backend: values['storage-backend'],
          reachable: values['storage-reachable'],
          localJobs: values['storage-local-jobs'],
          missingJobs: values['storage-missing-jobs'],
          setAside: values['storage-set-aside'],
          evictionPolicy: values['storage-eviction-policy'],
          lastError: values['storage-last-error'],
          location: values['storage-location'],
          // Cooldowns are shared; the chart and the breakers are per instance.
          cooldown: values['cooldown-claude'],
        })
        const [onA, onB] = pages.map(shown)
        assert.deepEqual({ ...onA, location: null }, { ...onB, location: null })
        // One blog answer cached through A and Haiku's chat answer (one
        // prompt, cached by A then B); B's hit on the blog answer and its
        // miss on another prompt count for both; two jobs done; Facebook's
        // three failures; Claude's cooldown.
        assert.deepEqual(onA, {
          cacheSize: '2',
          cacheHits: '1',
          cacheMisses: onA.cacheMisses,
          pending: '0',
          completed: '2',
          failed: '0',
          facebook: '3',
          backend: onCluster ? 'Redis Cluster' : 'Redis',
          reachable: 'yes',
          localJobs: '0',
          missingJobs: '0',
          setAside: '0',
          evictionPolicy: 'noeviction',
          lastError: 'none',
          location: onA.location,
          cooldown: 'claude',
        })
        assert.ok(Number(onA.cacheMisses) >= 1)
        assert.ok(onA.location.endsWith(`(keyPrefix ${prefix})`), onA.location)
      })

      // The listing summaries (/api/summary): gpt-4o with a shared breaker
      // and limits, gpt-4o-mini standing in (10 requests a minute), and a
      // daily budget of 1,000 tokens per user; every summary spends 400.
      const summarize = (server, userId, listing) => server.call('/api/summary', { listing, userId })
      const modelCalls = async (server) => {
        const { calls } = await world(server)
        return { gpt4o: calls['gpt-4o'], mini: calls['gpt-4o-mini'] }
      }
      const summaryState = (server) => server.call('/api/state')

      await check('a budget spent through A refuses on B: B serves the saved summary without calling a model', async () => {
        for (let i = 0; i < 3; i++) {
          const onA = await summarize(a, 'r6', 'a flat in Leith')
          assert.deepEqual([onA.success, onA.metadata.fallbackType], [true, undefined], JSON.stringify(onA))
        }
        // A success is charged after it answers, without the caller waiting.
        const spent = await waitFor(async () => (await summaryState(b)).budgets.find((x) => x.key === 'user:r6' && x.tokens >= 1000), {
          timeoutMs: 15_000,
          what: 'the budget charged, seen from B',
        })
        assert.deepEqual([spent.tokens, spent.tokenBudget, spent.per], [1200, 1000, 'day'])
        const before = await modelCalls(b)
        const refused = await summarize(b, 'r6', 'a flat in Leith')
        assert.deepEqual([refused.success, refused.metadata.fallbackType, refused.metadata.overBudget], [true, 'cache', 'user:r6'])
        assert.match(refused.text, /^a flat in Leith: a bright/)
        assert.deepEqual(await modelCalls(b), before, 'B called no model')
        // Another user's budget is untouched: B asks gpt-4o.
        const other = await summarize(b, 'r6-other', 'a flat in Leith')
        assert.deepEqual([other.metadata.fallbackType, other.metadata.overBudget], [undefined, undefined])
        assert.deepEqual(await modelCalls(b), { gpt4o: before.gpt4o + 1, mini: before.mini })
      })

      await check('gpt-4o failing through A opens its breaker on B too: B goes to gpt-4o-mini without calling gpt-4o', async () => {
        await simulate(a, { 'gpt-4o': 'down' })
        // At least 5 of the last 10 calls seen, half of them failed: open.
        // A user each, so that no budget runs out on the way.
        let state = null
        for (let i = 0; i < 10 && state !== 'open'; i++) {
          const onA = await summarize(a, `r7-${i}`, 'a house in Portobello')
          assert.deepEqual([onA.metadata.fallbackType, onA.metadata.alternative], ['alternative', 'gpt-4o-mini'], JSON.stringify(onA))
          state = (await summaryState(a)).sharedBreakers.find((x) => x.name === 'gpt-4o')?.state
        }
        assert.equal(state, 'open', 'gpt-4o\'s breaker opened through A')
        const onB = (await summaryState(b)).sharedBreakers.find((x) => x.name === 'gpt-4o')
        assert.deepEqual([onB.state, onB.probeHeldBy], ['open', null])
        // gpt-4o would answer on B: only the breaker keeps it out.
        assert.equal((await world(b))['gpt-4o'], 'ok')
        const before = await modelCalls(b)
        const passedOver = await summarize(b, 'r7-b', 'a house in Portobello')
        assert.deepEqual([passedOver.metadata.fallbackType, passedOver.metadata.alternative], ['alternative', 'gpt-4o-mini'])
        assert.deepEqual(await modelCalls(b), { gpt4o: before.gpt4o, mini: before.mini + 1 }, 'B did not call gpt-4o')
      })

      await check('gpt-4o-mini\'s requests per minute, used up through A, count on B: B falls back without calling a model', async () => {
        // gpt-4o stays passed over (its breaker is open for a minute): each
        // call is gpt-4o-mini's until its 10 a minute are used.
        let limited = null
        for (let i = 0; i < 12 && !limited; i++) {
          const onA = await summarize(a, `r8-${i}`, 'a cottage in Cramond')
          if (onA.metadata.limited) limited = onA
          else assert.equal(onA.metadata.alternative, 'gpt-4o-mini', JSON.stringify(onA))
        }
        assert.ok(limited, 'A reached gpt-4o-mini\'s limit')
        assert.deepEqual([limited.metadata.limited, limited.metadata.fallbackType], [['gpt-4o-mini'], 'cache'])
        const limit = (await summaryState(b)).limits.find((x) => x.name === 'gpt-4o-mini')
        assert.deepEqual([limit.requests, limit.requestsPerMinute], [10, 10])
        const before = await modelCalls(b)
        const onB = await summarize(b, 'r8-b', 'a cottage in Cramond')
        assert.deepEqual([onB.success, onB.metadata.limited, onB.metadata.fallbackType], [true, ['gpt-4o-mini'], 'cache'])
        assert.match(onB.text, /^a cottage in Cramond: /)
        assert.deepEqual(await modelCalls(b), before, 'B called no model')
        await simulate(a, { 'gpt-4o': 'ok' })
      })

      await check('/fallbacks shows the same breakers, limits and budgets on A and B', async () => {
        const shown = (values) => ({
          breaker: values['shared-breaker-gpt-4o'],
          probe: values['shared-breaker-gpt-4o-probe'],
          miniRequests: values['limit-gpt-4o-mini-requests'],
          miniTokens: values['limit-gpt-4o-mini-tokens'],
          gpt4oRequests: values['limit-gpt-4o-requests'],
          gpt4oTokens: values['limit-gpt-4o-tokens'],
          claudeRequests: values['limit-claude-requests'],
          haikuRequests: values['limit-haiku-requests'],
          budget: values['budget-user:r6-tokens'],
          budgetResets: values['budget-user:r6-resets'],
          otherBudget: values['budget-user:r6-other-tokens'],
        })
        // A success's charge is stored just after its answer: read both
        // pages until they agree.
        const [onA, onB] = await waitFor(
          async () => {
            const pages = await Promise.all([a, b].map(async (server) => shown(testIds(await (await fetch(`${server.base}/fallbacks`)).text()))))
            return JSON.stringify(pages[0]) === JSON.stringify(pages[1]) ? pages : null
          },
          { timeoutMs: 15_000, what: 'A and B to show the same numbers' },
        )
        assert.deepEqual(onA, onB)
        const { budgets } = await summaryState(a)
        const resetsAt = budgets.find((x) => x.key === 'user:r6').resetsAt
        assert.deepEqual(onA, {
          breaker: 'open',
          probe: 'nobody',
          miniRequests: '10 / 10',
          // Every summary gpt-4o-mini wrote: 400 tokens each.
          miniTokens: `${(10 * 400).toLocaleString('en-US')} / 40,000`,
          gpt4oRequests: onA.gpt4oRequests,
          gpt4oTokens: onA.gpt4oTokens,
          claudeRequests: onA.claudeRequests,
          haikuRequests: onA.haikuRequests,
          budget: '1,200 / 1,000',
          budgetResets: `${resetsAt.slice(0, 10)} 00:00 UTC`,
          otherBudget: '400 / 1,000',
        })
        // gpt-4o answered 4 calls (3 through A, 1 through B), and failed
        // some more through A before its breaker opened.
        assert.match(onA.gpt4oRequests, /^\d+ \/ 500$/)
        assert.ok(Number(onA.gpt4oRequests.split(' ')[0]) >= 4 + 3, onA.gpt4oRequests)
        assert.equal(onA.gpt4oTokens, '1,600 / 30,000')
      })
    })
  } finally {
    await timed('stop', async () => {
      await stopApps()
      if (redis) await redis.stop()
    })
  }
  report(`next.js on Redis${onCluster ? ' Cluster' : ''}, two instances`)
  console.log(`timings: ${timings.join(', ')}; total ${((Date.now() - began) / 1000).toFixed(1)} s (build ${reused ? 'reused' : 'made here'})`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
