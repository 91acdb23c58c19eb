'use strict'

// Turns the benchmark's rows into a Markdown table, the goal checks, a JSON
// file and an SVG chart; a full run also replaces the table in README.md.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const RESULTS = path.join(__dirname, 'results')
const README = path.join(__dirname, '..', 'README.md')
const START = '<!-- bench:start -->'
const END = '<!-- bench:end -->'

function formatNs(ns) {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`
  return `${ns.toFixed(0)} ns`
}

/**
 * A cell: a time, a throughput (with what each job asked of the Redis
 * server), a time with the server's share, or bytes.
 */
function value(result) {
  if (result.jobsPerSec !== undefined) {
    const jobs = Math.round(result.jobsPerSec).toLocaleString('en')
    return `${jobs} jobs/s (${result.requestsPerJob.toFixed(1)} requests, ${result.redisCpuUsPerJob.toFixed(0)} µs Redis CPU a job)`
  }
  if (result.commandsPerSec !== undefined) return `${result.commandsPerSec.toFixed(2)} commands/s`
  if (result.serverUs !== undefined) return `${formatNs(result.nsPerOp)} (server ${result.serverUs.toFixed(1)} µs)`
  return result.nsPerOp !== undefined ? formatNs(result.nsPerOp) : `${result.bytesPerEntry.toFixed(0)} B`
}
const amount = (result) => result.nsPerOp ?? result.bytesPerEntry ?? result.commandsPerSec

function latencyTableOf(rows, heading) {
  const lines = [
    `| ${heading} | p99.9 | max | max outside GC pauses |`,
    '| --- | ---: | ---: | ---: |',
  ]
  for (const row of rows) {
    const t = row.results.native
    lines.push(`| ${row.scenario} | ${t.p999Ms.toFixed(3)} ms | ${t.maxMs.toFixed(3)} ms | ${t.maxOutsideGcMs.toFixed(3)} ms |`)
  }
  return lines.join('\n')
}

const LATENCY_GROUPS = ['latency', 'redis-latency', 'redis-staleness']

/** The local copy's staleness window: another instance's write → seen here. */
function stalenessTableOf(rows) {
  const lines = ['| staleness window (loopback) | p50 | p99 | max | rounds that read the old value |', '| --- | ---: | ---: | ---: | ---: |']
  for (const row of rows) {
    lines.push(`| ${row.scenario} | ${(row.p50Us / 1000).toFixed(3)} ms | ${(row.p99Us / 1000).toFixed(3)} ms | ${(row.maxUs / 1000).toFixed(3)} ms | ${row.staleReadsRounds} of ${row.rounds} |`)
  }
  return lines.join('\n')
}

function tableOf(allRows) {
  const rows = allRows.filter((r) => !LATENCY_GROUPS.includes(r.group))
  const lines = [
    '| scenario | native | compared with | ratio (them ÷ native) | event-loop delay p99, one call a turn |',
    '| --- | ---: | --- | ---: | ---: |',
  ]
  for (const row of rows) {
    const { native: ours, ...others } = row.results
    const against = Object.entries(others)
      .map(([name, r]) => `${name} ${value(r)}`)
      .join('<br>')
    const ratios = Object.entries(others)
      .map(([name, r]) => `${(amount(r) / amount(ours)).toFixed(amount(r) / amount(ours) >= 10 ? 0 : 2)}×`)
      .join('<br>')
    const delay = row.eventLoopP99Ms === undefined ? '' : `${row.eventLoopP99Ms.toFixed(2)} ms`
    lines.push(`| ${row.scenario} | ${value(ours)} | ${against || '—'} | ${ratios || '—'} | ${delay} |`)
  }
  const noted = rows.filter((r) => r.note !== undefined)
  if (noted.length > 0) {
    lines.push('')
    for (const row of noted) lines.push(`- ${row.scenario}: ${row.note}.`)
  }
  const tables = [lines.join('\n'), latencyTableOf(allRows.filter((r) => r.group === 'latency'), 'one native call at 100k entries / jobs')]
  const redis = allRows.filter((r) => r.group === 'redis-latency')
  if (redis.length > 0) {
    const count = redis[0].count.toLocaleString('en')
    tables.push(latencyTableOf(redis, `one synchronous call in Redis mode, localhost, ${count} entries / jobs`))
  }
  const staleness = allRows.filter((r) => r.group === 'redis-staleness')
  if (staleness.length > 0) tables.push(stalenessTableOf(staleness))
  return tables.join('\n\n')
}

function find(rows, scenario) {
  const row = rows.find((r) => r.scenario === scenario)
  if (!row) throw new Error(`no benchmark row "${scenario}"`)
  return row.results
}

function goalsOf(rows) {
  const goals = []
  const goal = (text, measured, met) => goals.push({ text, measured, met })
  const queue = (k) => find(rows, `enqueue→dequeue→complete @ ${k}k pending`)
  const q10 = queue(10)
  goal('queue @ 10k pending: ≥ 500× faster than reference', `${(q10.reference.nsPerOp / q10.native.nsPerOp).toFixed(0)}×`, q10.reference.nsPerOp / q10.native.nsPerOp >= 500)
  const growth = queue(100).native.nsPerOp / queue(1).native.nsPerOp
  goal('queue: cost per op @ 100k within 2× of @ 1k', `${growth.toFixed(2)}×`, growth <= 2)
  const withKey = find(rows, 'success with cacheKey (2 KB prompt, 1 KB JSON)')
  goal('executeWithFallback success with cacheKey: no slower than reference', `${(withKey.native.nsPerOp / withKey.reference.nsPerOp).toFixed(2)}× reference`, withKey.native.nsPerOp <= withKey.reference.nsPerOp)
  const fromCache = find(rows, 'failure served from cache')
  goal('failure served from cache: no slower than reference', `${(fromCache.native.nsPerOp / fromCache.reference.nsPerOp).toFixed(2)}× reference`, fromCache.native.nsPerOp <= fromCache.reference.nsPerOp)
  const plain = find(rows, 'success, no cacheKey')
  const plainRatio = plain.native.nsPerOp / plain.reference.nsPerOp
  goal('success without cacheKey: within 10× of reference', `${plainRatio.toFixed(2)}× reference`, plainRatio <= 10)
  const inFlight = find(rows, 'success, 10,000 in flight').native.nsPerOp / find(rows, 'success, 100 in flight').native.nsPerOp
  goal('10,000 in flight: cost per call ≤ 2× of 100 in flight', `${inFlight.toFixed(2)}×`, inFlight <= 2)
  const hit = find(rows, 'get hit @ 100k')
  const hitRatio = hit.native.nsPerOp / hit['lru-cache'].nsPerOp
  goal('cache get hit @ 100k: within 2× of lru-cache', `${hitRatio.toFixed(2)}× lru-cache`, hitRatio <= 2)
  const memory = find(rows, 'memory per cached entry @ 100k')
  const memoryRatio = memory.native.bytesPerEntry / memory['lru-cache'].bytesPerEntry
  goal('memory per entry ≤ 0.6× lru-cache', `${memoryRatio.toFixed(2)}× lru-cache`, memoryRatio <= 0.6)
  const latency = rows.filter((r) => r.group === 'latency' && !/control/.test(r.scenario))
  const slowest = Math.max(...latency.map((r) => r.results.native.maxOutsideGcMs))
  const slowestWithGc = Math.max(...latency.map((r) => r.results.native.maxMs))
  goal(
    'no native call blocks the event loop > 1 ms at 100k',
    `slowest ${slowest.toFixed(3)} ms outside garbage-collector pauses; ${slowestWithGc.toFixed(3)} ms with them`,
    slowest <= 1,
  )
  const durable = rows.find((r) => r.group === 'durable' && r.scenario.includes('enqueue'))
  if (durable) {
    const file = durable.results.native.nsPerOp
    const vsBetter = file / durable.results['better-sqlite3'].nsPerOp
    goal('durable queue cycle: at least as fast as better-sqlite3', `${vsBetter.toFixed(2)}× better-sqlite3`, vsBetter <= 1)
    const vsMemory = file / durable.results['memory mode'].nsPerOp
    goal('durable queue cycle: within 5× of memory mode', `${vsMemory.toFixed(2)}× memory`, vsMemory <= 5)
  }
  // Issue #13: the chain and streamed answers within 1.2× of the same done by hand.
  for (const row of rows.filter((r) => r.group === 'ai' && r.results['plain JS'] !== undefined)) {
    const ratio = row.results.native.nsPerOp / row.results['plain JS'].nsPerOp
    goal(`${row.scenario}: within 1.2× of plain JS by hand`, `${ratio.toFixed(2)}× plain JS`, ratio <= 1.2)
  }
  for (const concurrency of [1, 16]) {
    const queued = rows.find((r) => r.scenario === `Redis queue: enqueue → process → complete, concurrency ${concurrency}`)
    if (!queued) continue
    const ratio = queued.results.native.jobsPerSec / queued.results.BullMQ.jobsPerSec
    goal(`Redis queue at concurrency ${concurrency}: at least 1.2× BullMQ's throughput`, `${ratio.toFixed(2)}× BullMQ's jobs/s`, ratio >= 1.2)
    const requests = queued.results.native.requestsPerJob
    goal(`Redis queue at concurrency ${concurrency}: at most 2 requests a job`, `${requests.toFixed(2)} requests`, requests <= 2)
  }
  const idle = rows.find((r) => r.scenario === 'Redis idle worker: commands a second to the server')
  if (idle) {
    const rate = idle.results.native.commandsPerSec
    goal('Redis idle worker: at most 1 command a second', `${rate.toFixed(2)} commands/s`, rate <= 1)
  }
  const cold = rows.find((r) => r.group === 'redis' && r.scenario.includes('cache get hit, cold copy'))
  if (cold) {
    const ratio = cold.results.native.nsPerOp / cold.results['ioredis GET'].nsPerOp
    goal('Redis cache get hit, cold copy: within 1.2× of one ioredis GET', `${ratio.toFixed(2)}× GET`, ratio <= 1.2)
  }
  const warm = rows.find((r) => r.group === 'redis' && r.scenario.includes('cache get hit, warm copy'))
  if (warm) {
    const ratio = warm.results.native.nsPerOp / warm.results['memory mode'].nsPerOp
    goal('Redis cache get hit, warm copy: within 2× of memory mode', `${ratio.toFixed(2)}× memory mode`, ratio <= 2)
  }
  for (const read of rows.filter((r) => r.group === 'redis-latency' && r.scenario.includes('warm copy'))) {
    const p999 = read.results.native.p999Ms
    goal(`Redis ${read.scenario}: p99.9 ≤ 0.05 ms`, `${p999.toFixed(3)} ms`, p999 <= 0.05)
  }
  const guarded = rows.find((r) => r.group === 'guards' && r.scenario.includes('closed shared breaker'))
  if (guarded) {
    const ratio = guarded.results.native.nsPerOp / guarded.results['plain call'].nsPerOp
    goal('memory: a call through a closed shared breaker + limit check within 1.2× of a plain call', `${ratio.toFixed(2)}× plain call`, ratio <= 1.2)
  }
  const onRedis = rows.find((r) => r.group === 'redis' && r.scenario.includes('closed shared breaker'))
  if (onRedis) {
    const ratio = onRedis.results.native.nsPerOp / onRedis.results['ioredis EVALSHA'].nsPerOp
    goal('Redis: a call through a closed shared breaker + limit check within 1.5× of one ioredis EVALSHA', `${ratio.toFixed(2)}× EVALSHA`, ratio <= 1.5)
  }
  return goals
}

function svgOf(rows) {
  const bars = rows
    .filter((r) => r.results && r.results.reference && r.results.native.nsPerOp !== undefined)
    .map((r) => ({ label: r.scenario, ratio: r.results.reference.nsPerOp / r.results.native.nsPerOp }))
  const width = 860
  const left = 330
  const barHeight = 22
  const top = 46
  const height = top + bars.length * (barHeight + 8) + 40
  const maxLog = Math.max(1, ...bars.map((b) => Math.log10(Math.max(b.ratio, 1)))) + 0.3
  const minLog = Math.min(0, ...bars.map((b) => Math.log10(b.ratio))) - 0.1
  const x = (log) => left + ((log - minLog) / (maxLog - minLog)) * (width - left - 70)
  const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="24" font-size="16" font-weight="bold">Speed-up of fallback-mechanisms (native) over the plain JavaScript reference</text>`,
    `<text x="12" y="40" fill="#555">median time per operation, reference ÷ native, log scale; right of the line is faster</text>`,
    `<line x1="${x(0)}" y1="${top - 4}" x2="${x(0)}" y2="${height - 30}" stroke="#333"/>`,
  ]
  bars.forEach((bar, i) => {
    const y = top + i * (barHeight + 8)
    const log = Math.log10(bar.ratio)
    const from = Math.min(x(0), x(log))
    const color = bar.ratio >= 1 ? '#2f7d4f' : '#b3452c'
    parts.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${escape(bar.label)}</text>`)
    parts.push(`<rect x="${from}" y="${y}" width="${Math.max(1, Math.abs(x(log) - x(0)))}" height="${barHeight}" fill="${color}"/>`)
    parts.push(`<text x="${Math.max(x(0), x(log)) + 6}" y="${y + 15}">${bar.ratio >= 10 ? bar.ratio.toFixed(0) : bar.ratio.toFixed(2)}×</text>`)
  })
  parts.push(`<text x="12" y="${height - 10}" fill="#555">Node ${process.version}, ${os.cpus().length} cores, ${new Date().toISOString().slice(0, 10)}</text>`)
  parts.push('</svg>')
  return parts.join('\n')
}

function writeReports(rows, { quick, notes, updateReadme }) {
  fs.mkdirSync(RESULTS, { recursive: true })
  const table = tableOf(rows)
  const goals = goalsOf(rows)
  const goalsText = goals.map((g) => `- ${g.met ? 'met' : 'NOT met'}: ${g.text} (${g.measured})`).join('\n')
  const stamp = `Node ${process.version}, ${os.cpus().length} cores, ${new Date().toISOString().slice(0, 10)}${quick ? ', --quick' : ''}`
  const markdown = `${table}\n\n${stamp}. Goals:\n\n${goalsText}\n`
  const files = {
    json: path.join(RESULTS, quick ? 'quick.json' : 'latest.json'),
    svg: path.join(RESULTS, quick ? 'quick.svg' : 'latest.svg'),
    md: path.join(RESULTS, quick ? 'quick.md' : 'latest.md'),
  }
  fs.writeFileSync(files.json, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, quick, rows, goals, notes }, null, 2)}\n`)
  fs.writeFileSync(files.svg, `${svgOf(rows)}\n`)
  fs.writeFileSync(files.md, markdown)
  if (updateReadme && fs.existsSync(README)) {
    const readme = fs.readFileSync(README, 'utf8')
    const at = readme.indexOf(START)
    const end = readme.indexOf(END)
    if (at >= 0 && end > at) {
      fs.writeFileSync(README, `${readme.slice(0, at + START.length)}\n${markdown}${readme.slice(end)}`)
    }
  }
  return { table, goals: goalsText, files }
}

module.exports = { writeReports, formatNs }
