'use strict'

// A walk through the usage document's scenarios with simulated outside
// services that fail on cue. Prints what each call fell back to.
//
//   npm run demo

const {
  executeWithFallback,
  aiResponseCache,
  backgroundJobQueue,
  integrationFailureManager,
  getUserFriendlyMessage,
  getCooldowns,
} = require('..')

const services = { model: true, facebook: true, analytics: true }

const model = {
  async invoke(prompt) {
    await pause(5)
    if (!services.model) throw new Error('Bedrock: ThrottlingException (model unavailable)')
    return { title: `A guide to ${prompt}`, content: `Everything about ${prompt}.` }
  },
}
async function postToFacebook(contentId) {
  await pause(2)
  if (!services.facebook) throw new Error('Facebook Graph API: 503 Service Unavailable')
  return { postId: `fb_${contentId}` }
}
async function syncAnalyticsData(contentId) {
  await pause(2)
  if (!services.analytics) throw new Error('Analytics warehouse unreachable')
  return { contentId, synced: true }
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function heading(text) {
  console.log(`\n\x1b[1m${text}\x1b[0m`)
}

function report(label, result) {
  const how = result.metadata?.usedFallback
    ? `fell back to ${result.metadata.fallbackType.toUpperCase()}${result.metadata.stale ? ' (stale)' : ''}`
    : result.success
      ? 'succeeded'
      : 'FAILED (no fallback applied)'
  console.log(`  ${label.padEnd(38)} ${how}`)
  if (result.data !== undefined) console.log(`  ${''.padEnd(38)} data: ${JSON.stringify(result.data)}`)
  if (result.metadata?.jobId) console.log(`  ${''.padEnd(38)} job:  ${result.metadata.jobId}`)
  console.log(`  ${''.padEnd(38)} user sees: "${result.message}"`)
}

const generateBlogPost = (prompt, userId) =>
  executeWithFallback(() => model.invoke(prompt), {
    operationName: 'generate_blog_post',
    userId,
    cacheKey: { prompt, modelId: 'anthropic.claude-3-5-sonnet-20241022-v2:0' },
    defaultValue: { title: 'Blog Post', content: 'Content generation temporarily unavailable. Please try again.' },
  })

const syncToFacebook = (contentId, userId) =>
  executeWithFallback(() => postToFacebook(contentId), {
    operationName: 'facebook_sync',
    service: 'facebook',
    userId,
    allowSkip: true,
  })

const processAnalytics = (contentId, userId) =>
  executeWithFallback(() => syncAnalyticsData(contentId), {
    operationName: 'process_analytics',
    userId,
    queueOnFailure: { type: 'analytics', payload: { contentId }, priority: 'low' },
  })

async function main() {
  heading('1. AI content: cache, then a safe default')
  report('model up: "real estate"', await generateBlogPost('real estate', 'user-1'))
  services.model = false
  console.log('  -- the model goes down --')
  report('model down: "real estate" again', await generateBlogPost('real estate', 'user-1'))
  report('model down: "gardening" (never cached)', await generateBlogPost('gardening', 'user-1'))

  heading('2. A flaky integration is skipped, then skipped up front')
  services.facebook = false
  for (let attempt = 1; attempt <= 4; attempt++) {
    if (integrationFailureManager.shouldSkipService('facebook', 3)) {
      const label = `attempt ${attempt}: 3 failures in 5 min`
      console.log(`  ${label.padEnd(38)} skipped up front: Facebook not called`)
      continue
    }
    report(`attempt ${attempt}: post to Facebook`, await syncToFacebook(`post-${attempt}`, 'user-1'))
  }

  heading('3. Work that can wait is queued and processed later')
  services.analytics = false
  const queued = await processAnalytics('post-7', 'user-1')
  report('analytics down: sync "post-7"', queued)
  services.analytics = true
  console.log('  -- analytics comes back; a worker drains the queue --')
  for (let job = backgroundJobQueue.dequeue(); job; job = backgroundJobQueue.dequeue()) {
    try {
      await syncAnalyticsData(job.payload.contentId)
      backgroundJobQueue.complete(job.id)
      console.log(`  processed ${job.id} (${job.type}, ${job.priority} priority): completed`)
    } catch (error) {
      backgroundJobQueue.fail(job.id, error.message)
    }
  }

  heading('4. Where things stand')
  const cache = aiResponseCache.getStats()
  console.log(`  cache: ${cache.size} answers kept, ${cache.hits} served from cache, ${cache.misses} misses`)
  const queue = backgroundJobQueue.getStats()
  console.log(`  queue: ${queue.pending} waiting, ${queue.processing} running, ${queue.completed} done, ${queue.failed} failed`)
  for (const [service, data] of Object.entries(integrationFailureManager.getStats())) {
    console.log(`  ${service}: ${data.count} recent failures, last at ${data.lastFailure.toISOString()}`)
  }

  await aiDemo()

  heading('8. A friendly message for any error')
  for (const type of ['cache', 'skip', 'queue', 'default', 'alternative', undefined]) {
    console.log(`  ${String(type).padEnd(11)} ${getUserFriendlyMessage(new Error('ECONNRESET'), type)}`)
  }
}

/** A model that streams its answer word by word, or fails with a rate limit. */
function streamingModel(name, { limited }) {
  return async () => {
    if (limited()) throw Object.assign(new Error(`${name}: 429 Too Many Requests`), { status: 429, headers: { 'retry-after': '30' } })
    const words = `${name} says: fallbacks keep the answer coming.`.split(' ')
    return new ReadableStream({
      async pull(controller) {
        await pause(3)
        const word = words.shift()
        if (word === undefined) controller.close()
        else controller.enqueue(`${word} `)
      },
    })
  }
}

/** 5–7. A chain of models with a shared cooldown, and streamed answers cached and replayed. */
async function aiDemo() {
  let claudeLimited = true
  let haikuDown = false
  const claude = streamingModel('claude', { limited: () => claudeLimited })
  const haiku = streamingModel('haiku', { limited: () => haikuDown })
  const ask = (prompt) =>
    executeWithFallback(claude, {
      operationName: 'chat',
      service: 'claude',
      cacheKey: { prompt, modelId: 'claude' },
      alternatives: [{ name: 'haiku', operation: haiku }],
      defaultValue: 'The assistant is busy; try again in a minute.',
      stream: true,
    })
  const read = async (stream) => {
    let text = ''
    let chunks = 0
    for await (const chunk of stream) {
      text += chunk
      chunks++
    }
    return `${text.trim()} (${chunks} chunk${chunks === 1 ? '' : 's'})`
  }

  heading('5. Claude is rate-limited: Haiku answers, streamed')
  const first = await ask('What keeps an app up?')
  console.log(`  ${first.metadata.fallbackType} "${first.metadata.alternative}": ${await read(first.data)}`)
  const [name, cooldown] = Object.entries(getCooldowns())[0]
  console.log(`  ${name} is benched for ${Math.round(cooldown.remainingMs / 1000)} s (${cooldown.reason})`)

  heading('6. Within the cooldown Claude is not even called')
  claudeLimited = false
  const second = await ask('And what else?')
  console.log(`  passed over: ${second.metadata.benched.join(', ')}; ${second.metadata.alternative} answered: ${await read(second.data)}`)

  heading('7. Both down: the cached streamed answer is replayed as a stream')
  haikuDown = true
  const third = await ask('What keeps an app up?')
  console.log(`  ${third.metadata.fallbackType}: ${await read(third.data)}`)
  integrationFailureManager.clearFailures('claude')
}

/**
 * 9. Durable mode: the same queue kept in a SQLite file. A child process
 * queues work and is killed with SIGKILL; a new process finds the job.
 */
function durableDemo() {
  heading('9. Durable mode: queued work survives kill -9')
  const { spawnSync } = require('node:child_process')
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-demo-'))
  const file = path.join(dir, 'fallbacks.db')
  const env = { ...process.env, FALLBACK_MECHANISMS_DB: file }
  const run = (code) =>
    spawnSync(process.execPath, ['-e', `const lib = require(${JSON.stringify(path.join(__dirname, '..'))});${code}`], { env, encoding: 'utf8' })
  const killed = run(`
    const r = lib.queueForLater('notification', 'send-digest', { to: 'ada@example.com' }, 'user-1', 'high')
    process.stdout.write(r.data)
    process.kill(process.pid, 'SIGKILL')
  `)
  console.log(`  a process queued ${killed.stdout} in ${file} and was killed (${killed.signal})`)
  const after = run(`
    const job = lib.backgroundJobQueue.dequeue()
    lib.backgroundJobQueue.complete(job.id)
    process.stdout.write(job.id + ' ' + job.operation + ' ' + JSON.stringify(job.payload))
  `)
  console.log(`  a new process dequeued ${after.stdout} and completed it`)
  fs.rmSync(dir, { recursive: true, force: true })
}

main()
  .then(durableDemo)
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
