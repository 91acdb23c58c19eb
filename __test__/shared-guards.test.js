'use strict'

// The proof that breakers, rate limits and budgets are shared
// (README, "Resilience across instances"): several Node.js processes on
// one store (the suite's Redis server when it runs on Redis, else one
// SQLite file) call one fake provider each; what the provider sees across
// all of them is counted here. Every child is stopped by its pid.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { sleep } = require('./helpers')

const redisUrl = process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fm-shared-guards-'))
const store = redisUrl
  ? { FALLBACK_MECHANISMS_REDIS_URL: redisUrl, FALLBACK_MECHANISMS_REDIS_PREFIX: `shared-guards-${process.pid}` }
  : { FALLBACK_MECHANISMS_DB: path.join(dir, 'shared.db') }
const where = redisUrl ? 'one Redis server' : 'one SQLite file'

const children = new Set()
test.after(() => {
  for (const proc of children) proc.kill('SIGKILL')
  fs.rmSync(dir, { recursive: true, force: true })
})

/**
 * A process of the app: `body` runs once the parent says "go" (so that
 * processes started together call together), with `exec(operation,
 * options)`, `report(value)` (a JSON line), `sleep` and `calls` (this
 * process's calls to the fake provider) in scope.
 */
function app(body) {
  const code = `
    const fm = require('.')
    // On a loaded machine five processes may wait on the file's lock past the default 250 ms.
    if (process.env.FALLBACK_MECHANISMS_DB) fm.configure({ busyTimeoutMs: 10000 })
    process.on('warning', () => {})
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
    const report = (value) => process.stdout.write(JSON.stringify(value) + '\\n')
    const exec = (operation, options) => fm.executeWithFallback(operation, { operationName: 'op', defaultValue: 'fallback', ...options })
    const calls = { n: 0 }
    // Touch the store first, so the parent's "go" finds every process connected.
    fm.getCircuitBreakerStatus()
    report('ready')
    process.stdin.once('data', async () => {
      try {
        ${body}
      } catch (error) {
        console.error(error)
        process.exit(1)
      }
      process.exit(0)
    })`
  const env = { ...process.env, NODE_OPTIONS: '', ...store }
  delete env.FALLBACK_MECHANISMS_TEST_REDIS_URL
  const proc = spawn(process.execPath, ['-e', code], { cwd: path.join(__dirname, '..'), env, stdio: ['pipe', 'pipe', 'inherit'] })
  children.add(proc)
  const lines = []
  const waiters = []
  let buffered = ''
  proc.stdout.on('data', (chunk) => {
    buffered += chunk
    let end
    while ((end = buffered.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffered.slice(0, end)))
      buffered = buffered.slice(end + 1)
      for (const waiter of waiters.splice(0)) waiter()
    }
  })
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)))
  exited.then(() => {
    children.delete(proc)
    for (const waiter of waiters.splice(0)) waiter()
  })
  /** Resolves with the first line `match` accepts. */
  const line = async (match) => {
    for (;;) {
      const found = lines.find(match)
      if (found !== undefined) return found
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the child exited (${proc.exitCode ?? proc.signalCode}) before printing the line wanted; it printed ${JSON.stringify(lines)}`)
      await new Promise((resolve) => waiters.push(resolve))
    }
  }
  return {
    proc,
    ready: () => line((value) => value === 'ready'),
    go: () => proc.stdin.write('go\n'),
    line,
    /** Its last line, once it exited 0. */
    result: async () => {
      const status = await exited
      if (status !== 0) throw new Error(`child exited ${status}; it printed ${JSON.stringify(lines)}`)
      return lines[lines.length - 1]
    },
  }
}

/** Starts `bodies` as processes, waits until each is connected, then lets them all go. */
async function together(...bodies) {
  const apps = bodies.map(app)
  await Promise.all(apps.map((one) => one.ready()))
  for (const one of apps) one.go()
  return apps
}

const tripping = (service, halfOpenAfterMs) => `
  const breaker = { size: 4, minimumCalls: 4, failureRatio: 0.5, halfOpenAfterMs: ${halfOpenAfterMs} }
  for (let i = 0; i < 4; i++) await exec(async () => { calls.n++; throw new Error('down') }, { service: '${service}', breaker })
  report({ calls: calls.n, state: fm.getCircuitBreakerStatus()['${service}'].state })`

test(`one process trips the breaker; the others, on ${where}, fail fast at once`, async () => {
  const service = `trip-${process.pid}`
  const [tripper] = await together(tripping(service, 60_000))
  assert.deepEqual(await tripper.result(), { calls: 4, state: 'open' })
  const others = await together(
    ...[1, 2].map(
      () => `
      for (let i = 0; i < 5; i++) await exec(async () => { calls.n++; return 'called' }, { service: '${service}', breaker: { size: 4, minimumCalls: 4, halfOpenAfterMs: 60000 } })
      const status = fm.getCircuitBreakerStatus()['${service}']
      report({ calls: calls.n, state: status.state, shared: status.shared })`,
    ),
  )
  for (const other of others) assert.deepEqual(await other.result(), { calls: 0, state: 'open', shared: true })
})

test(`during half-open exactly one probe runs across three processes on ${where}`, async () => {
  const service = `probe-${process.pid}`
  const [tripper] = await together(tripping(service, 3_000))
  assert.equal((await tripper.result()).state, 'open')
  await sleep(3_100)
  const probing = `
    const breaker = { size: 4, minimumCalls: 4, failureRatio: 0.5, halfOpenAfterMs: 3000 }
    const slowFailure = async () => { calls.n++; await sleep(200); throw new Error('still down') }
    for (let i = 0; i < 10; i++) {
      await exec(slowFailure, { service: '${service}', breaker })
      await sleep(20)
    }
    report({ calls: calls.n })`
  const apps = await together(probing, probing, probing)
  const results = await Promise.all(apps.map((one) => one.result()))
  const total = results.reduce((sum, { calls }) => sum + calls, 0)
  assert.equal(total, 1, `calls per process: ${JSON.stringify(results)}`)
})

test(`a probe holder killed with SIGKILL is replaced once its lease runs out, on ${where}`, async () => {
  const service = `killed-${process.pid}`
  const [tripper] = await together(tripping(service, 1_500))
  await tripper.result()
  await sleep(1_600)
  // The lease starts when the probe is granted, inside exec, before the
  // function runs: the time taken before exec is asked is its lower bound
  // (one taken in the function may come later, by a lot under emulation).
  const [holder] = await together(`
    const asked = Date.now()
    await exec(async () => { report({ probing: asked }); await new Promise(() => {}) }, { service: '${service}', breaker: { size: 4, minimumCalls: 4, halfOpenAfterMs: 1500 } })`)
  const { probing } = await holder.line((value) => value !== null && typeof value === 'object' && 'probing' in value)
  holder.proc.kill('SIGKILL')
  const [replacement] = await together(`
    const breaker = { size: 4, minimumCalls: 4, failureRatio: 0.5, halfOpenAfterMs: 1500 }
    let answer
    let tries = 0
    while (answer !== 'recovered' && tries++ < 600) {
      const before = fm.getCircuitBreakerStatus()['${service}']
      answer = (await exec(async () => { calls.n++; report({ calledAt: Date.now(), heldBy: before.probeHeldBy }); return 'recovered' }, { service: '${service}', breaker })).data
      if (answer !== 'recovered') await sleep(50)
    }
    report({ calls: calls.n, answer, state: fm.getCircuitBreakerStatus()['${service}'].state })`)
  const calledAt = await replacement.line((value) => value !== null && typeof value === 'object' && 'calledAt' in value)
  const done = await replacement.result()
  assert.deepEqual(done, { calls: 1, answer: 'recovered', state: 'closed' })
  assert.ok(calledAt.calledAt >= probing + 1_500, `the dead holder's lease (1500 ms from its grant, at or after ${probing}) ran out first: called at ${calledAt.calledAt}`)
  assert.ok(calledAt.heldBy !== null, 'the killed process still held the probe until then')
})

test(`four processes share requestsPerMinute: 60 on ${where}`, async () => {
  const model = `rpm-${process.pid}`
  const started = Date.now()
  const burst = `
    for (let i = 0; i < 40; i++) await exec(async () => { calls.n++; return 'ok' }, { service: '${model}', limits: { requestsPerMinute: 60 } })
    report({ calls: calls.n })`
  const apps = await together(burst, burst, burst, burst)
  const results = await Promise.all(apps.map((one) => one.result()))
  const total = results.reduce((sum, { calls }) => sum + calls, 0)
  assert.ok(total <= 60, `at most 60 calls in the minute: ${JSON.stringify(results)}`)
  // All 160 tries fell inside one minute (as they do unless the machine is very slow): the limit was used.
  if (Date.now() - started < 59_000) assert.equal(total, 60, JSON.stringify(results))
})

test(`four processes share tokensPerMinute with usage read from AI SDK results, on ${where}`, async () => {
  const model = `tpm-${process.pid}`
  const generating = `
    const { generateText } = require('ai')
    const { MockLanguageModelV2 } = require('ai/test')
    const mock = new MockLanguageModelV2({ doGenerate: async () => ({ content: [{ type: 'text', text: 'hi' }], finishReason: 'stop', usage: { inputTokens: 4, outputTokens: 6, totalTokens: 10 }, warnings: [] }) })
    for (let i = 0; i < 10; i++) {
      await exec(async () => { calls.n++; return generateText({ model: mock, prompt: 'p' }) }, { service: '${model}', limits: { tokensPerMinute: 100 } })
    }
    report({ calls: calls.n, tokens: fm.getLimits()['${model}'].tokens })`
  const apps = await together(generating, generating, generating, generating)
  const results = await Promise.all(apps.map((one) => one.result()))
  const total = results.reduce((sum, { calls }) => sum + calls, 0)
  // A call starts while fewer than 100 tokens were spent and is charged when
  // it ends: each process may have one call in flight past the limit.
  assert.ok(total * 10 >= 100 && total * 10 <= 100 + 4 * 10, `tokens spent: ${total * 10} (${JSON.stringify(results)})`)
  assert.equal(Math.max(...results.map((one) => one.tokens)), total * 10, 'getLimits() counts every process')
})

test(`four processes with eight calls in flight each: every call and every token is counted, on ${where}`, async () => {
  const model = `contended-${process.pid}`
  const key = `contended-user-${process.pid}`
  const busy = `
    const options = { service: '${model}', limits: { requestsPerMinute: 1000000 }, budget: { key: '${key}', tokens: 1000000, per: 'day' }, usage: () => 1 }
    let answered = 0
    for (let round = 0; round < 6; round++) {
      const results = await Promise.all(Array.from({ length: 8 }, () => exec(async () => { calls.n++; await sleep(1); return 'ok' }, options)))
      answered += results.filter((result) => result.data === 'ok').length
    }
    await sleep(50)
    report({ calls: calls.n, answered })`
  const apps = await together(busy, busy, busy, busy)
  const results = await Promise.all(apps.map((one) => one.result()))
  const calls = results.reduce((sum, one) => sum + one.calls, 0)
  assert.equal(calls, 4 * 6 * 8, 'no call was turned away')
  const [reader] = await together(`report({ requests: fm.getLimits()['${model}'].requests, tokens: fm.getBudgets()['${key}'].tokens })`)
  assert.deepEqual(await reader.result(), { requests: calls, tokens: calls }, 'every request and every token counted once')
})

test('with the store away each process decides alone with the same settings, warned once', async () => {
  const net = require('node:net')
  const port = await new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
  const code = `
    const fm = require('.')
    fm.configure({ redisUrl: 'redis://127.0.0.1:${port}', redisTimeoutMs: 200 })
    const warnings = []
    process.on('warning', (warning) => warnings.push(warning.code))
    ;(async () => {
      let calls = 0
      const options = { operationName: 'alone', service: 'alone', breaker: { size: 3, minimumCalls: 3, halfOpenAfterMs: 60000 }, defaultValue: 'safe' }
      for (let i = 0; i < 5; i++) await fm.executeWithFallback(async () => { calls++; throw new Error('down') }, options)
      const answered = await fm.executeWithFallback(async () => 'never', { ...options, operationName: 'alone-2' })
      await new Promise((resolve) => setImmediate(resolve))
      console.log(JSON.stringify({ calls, data: answered.data, guardWarnings: warnings.filter((code) => code === 'FALLBACK_GUARDS_UNAVAILABLE').length }))
    })()`
  const { child } = require('./helpers')
  // Whatever store the suite's backend gave this process, the child has none but its own.
  const run = child(code, { FALLBACK_MECHANISMS_DB: '', FALLBACK_MECHANISMS_REDIS_URL: '' })
  children.add(run.proc)
  const out = JSON.parse((await run.done).trim().split('\n').pop())
  assert.equal(out.calls, 3, 'the local breaker opened after 3 failures')
  assert.equal(out.data, 'safe')
  assert.equal(out.guardWarnings, 2, 'once per operation')
})
