'use strict'

// Issue #21, finding 3: does a Jest run keep every test file's context?
// Writes 30 test files (each loads the package, makes a call with
// `alternatives` whose primary is throttled, so a cooldown is stored, and
// holds a fixture of 100,000 small objects, --fixture-rows N) into
// a temporary directory and runs them with Jest in one process
// (`--runInBand --logHeapUsage`, Node started with --expose-gc, so Jest
// collects garbage before it reads the heap after each file). Then the
// same with the package stubbed (`moduleNameMapper` to an object with an
// `executeWithFallback` that calls the primary). Prints the heap after the
// first and the last file for each, and, with --detect-leaks, what Jest's
// `--detectLeaks` says. Jest orders the files itself: first and last are
// in the order they ran.
//
//   npm install --prefix /tmp/jest-measure jest@29    # not a dependency
//   JEST_DIR=/tmp/jest-measure node bench/jest-contexts/run.js [--package DIR] [--detect-leaks]
//
// --package DIR measures another copy of the package (a checkout of main,
// built), the default being this one.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const FILES = 30
const argAfter = (name) => {
  const at = process.argv.indexOf(name)
  return at === -1 ? undefined : process.argv[at + 1]
}
const pkg = path.resolve(argAfter('--package') || path.join(__dirname, '..', '..'))
const jestDir = process.env.JEST_DIR || '/tmp/jest-measure'
const jestBin = path.join(jestDir, 'node_modules', 'jest', 'bin', 'jest.js')
const detectLeaks = process.argv.includes('--detect-leaks')
const FIXTURE_ROWS = Number(argAfter('--fixture-rows') ?? 100_000)

function testFile(index) {
  return `'use strict'
const lib = require('fallback-mechanisms')
// What a test file holds while it runs (fixtures, modules it loaded):
// 100,000 rows are about 8 MB, gone with the file's context unless something keeps it.
const fixture = Array.from({ length: ${FIXTURE_ROWS} }, (_, i) => ({ id: i, text: 'row ' + i }))
test('file ${index} calls the package', async () => {
  const throttled = async () => { throw Object.assign(new Error('rate limited'), { status: 429 }) }
  const result = await lib.executeWithFallback(throttled, {
    operationName: 'jest-${index}',
    service: 'jest-primary-${index}',
    alternatives: [{ name: 'jest-alternative-${index}', operation: async () => 'answered' }],
    defaultValue: 'answered',
  })
  expect(result.data).toBe('answered')
  expect(fixture.length).toBe(${FIXTURE_ROWS})
})
`
}

const STUB = `'use strict'
module.exports = { executeWithFallback: async (operation, options) => { try { return { success: true, data: await operation() } } catch { return { success: true, data: options.defaultValue } } } }
`

function run(stubbed) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jest-contexts-'))
  try {
    for (let i = 1; i <= FILES; i++) fs.writeFileSync(path.join(dir, `file-${String(i).padStart(2, '0')}.test.js`), testFile(i))
    fs.writeFileSync(path.join(dir, 'stub.js'), STUB)
    const config = {
      rootDir: dir,
      testEnvironment: 'node',
      moduleNameMapper: { '^fallback-mechanisms$': stubbed ? path.join(dir, 'stub.js') : pkg },
    }
    const args = ['--expose-gc', jestBin, '--runInBand', '--logHeapUsage', '--ci', '--config', JSON.stringify(config)]
    if (detectLeaks) args.push('--detectLeaks')
    // Jest writes its report on stderr.
    const ran = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
    const output = `${ran.stdout}${ran.stderr}`
    if (process.env.JEST_CONTEXTS_DEBUG) console.log(output)
    const heaps = [...output.matchAll(/file-(\d+)\.test\.js.*?\((\d+) MB heap size\)/g)].map((m) => [Number(m[1]), Number(m[2])])
    // Each file --detectLeaks reports fails as a suite.
    const leaks = detectLeaks ? Number((output.match(/Test Suites: (\d+) failed/) || [0, 0])[1]) : 0
    return { heaps, leaks, summary: (output.match(/Tests:.*$/m) || [''])[0] }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

for (const stubbed of [false, true]) {
  const { heaps, leaks, summary } = run(stubbed)
  const first = heaps[0]
  const last = heaps[heaps.length - 1]
  const label = stubbed ? 'package stubbed' : `package ${pkg}`
  console.log(`${label}: heap after the first file run: ${first?.[1]} MB, after the last (the ${heaps.length}th): ${last?.[1]} MB${detectLeaks ? `; --detectLeaks: ${leaks} file(s) reported leaking` : ''}; ${summary}`)
}
