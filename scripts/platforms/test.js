'use strict'

// npm run test:platforms [-- --target <rust triple>]… [--smoke]
//
// For each platform built by npm run build:platforms (dist/ and
// npm/<platform>/): macOS binaries get the structural check (darwin.js);
// the others, under emulation when needed (runtimes.js), are installed as a
// user would (the main tarball plus the platform tarball, into an empty
// app, no Rust involved), the package's install script and the demo run
// there, then the JavaScript suite runs on the memory backend on that
// binary. --smoke stops before the suite. Every skipped test is listed
// with its reason; the exit code is non-zero when anything failed.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TARGETS } = require('../platform')
const { root, main, binaryName } = require('./manifest')
const { CACHE, output, run } = require('./tools')
const { DIST } = require('./pack')
const { checkDarwin } = require('./darwin')
const { runtime } = require('./runtimes')

const LOGS = path.join(CACHE, 'logs')

function parseArgs(argv) {
  const triples = []
  let smoke = false
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') triples.push(argv[++i])
    else if (argv[i] === '--smoke') smoke = true
    else throw new Error(`Unknown argument ${argv[i]}: use --target <rust triple> (repeatable) and --smoke`)
  }
  const unknown = triples.filter((t) => !TARGETS.some((target) => target.triple === t))
  if (unknown.length) throw new Error(`Unknown target ${unknown[0]}: one of ${TARGETS.map((t) => t.triple).join(', ')}`)
  return { targets: triples.length ? TARGETS.filter((t) => triples.includes(t.triple)) : TARGETS, smoke }
}

/** Runs Node of `rt` on `args`, its output to a log file (wine's Node cannot write to a pipe). */
function runNode(rt, args, { cwd, env = {}, log }) {
  const file = path.join(LOGS, `${log}.log`)
  const fd = fs.openSync(file, 'w')
  const started = Date.now()
  let result
  try {
    result = spawnSync(rt.command[0], [...rt.command.slice(1), ...args], {
      cwd,
      env: { ...process.env, ...rt.env, ...env },
      stdio: ['ignore', fd, fd],
      timeout: 45 * 60_000,
    })
  } finally {
    fs.closeSync(fd)
  }
  return { status: result.status, out: fs.readFileSync(file, 'utf8'), seconds: Math.round((Date.now() - started) / 1000), file }
}

function tarballs(target) {
  const platform = path.join(DIST, `fallback-mechanisms-${target.platform}-${main.version}.tgz`)
  const mainTarball = path.join(DIST, `fallback-mechanisms-${main.version}.tgz`)
  for (const file of [platform, mainTarball]) {
    if (!fs.existsSync(file)) throw new Error(`${path.relative(root, file)} is missing: run npm run build:platforms -- --target ${target.triple}`)
  }
  return [mainTarball, platform]
}

/** npm's own script, which the target's Node runs. */
function npmCli() {
  return path.join(path.dirname(fs.realpathSync(output('sh', ['-c', 'command -v npm']))), 'npm-cli.js')
}

/**
 * Installs the two tarballs into an empty app as a user on `target` would:
 * npm itself runs on the target's Node, so it sees that platform's os, cpu
 * and libc. Returns the app folder.
 */
function installApp(target, rt) {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), `fallback-app-${target.platform}-`))
  fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","private":true}\n')
  // The install script is run next, on its own, to see what it says.
  const args = ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs(target)]
  if (rt.npmOnHost) {
    // npm under wine hangs here: this machine's npm installs for Windows
    // (--force: it would refuse a win32 package on Linux).
    run('npm', [...args, '--force', `--os=${target.os}`, `--cpu=${target.cpu}`], { cwd: app, stdio: 'ignore' })
  } else {
    const install = runNode(rt, [npmCli(), ...args], { cwd: app, log: `${target.platform}-npm` })
    if (install.status !== 0) throw new Error(`npm install failed (${install.status}):\n${install.out}`)
  }
  // The demo as an app would write it: the package by its name.
  const demo = fs
    .readFileSync(path.join(root, 'examples', 'demo.js'), 'utf8')
    .replace("require('..')", "require('fallback-mechanisms')")
    .replace("path.join(__dirname, '..')", "require.resolve('fallback-mechanisms')")
  fs.writeFileSync(path.join(app, 'demo.js'), demo)
  return app
}

/** The user's steps on the target: install script (no build), the binary's origin, the demo. */
function smoke(target, rt) {
  const app = installApp(target, rt)
  try {
    const install = runNode(rt, [path.join('node_modules', 'fallback-mechanisms', 'scripts', 'install.js')], { cwd: app, log: `${target.platform}-install` })
    if (install.status !== 0 || /building/.test(install.out)) throw new Error(`the install script did not find the platform package:\n${install.out}`)
    const origin = runNode(rt, ['-e', "require('fallback-mechanisms'); console.log(Object.keys(require.cache).find((f) => f.endsWith('.node')))"], { cwd: app, log: `${target.platform}-origin` })
    if (origin.status !== 0 || !origin.out.includes(`fallback-mechanisms-${target.platform}`)) throw new Error(`the binary did not come from the platform package:\n${origin.out}`)
    const demo = runNode(rt, ['demo.js'], { cwd: app, log: `${target.platform}-demo` })
    // Its last step runs child processes of the same Node, one killed
    // (on Windows, which has no signals, it ends with no signal named).
    const killed = target.os === 'win32' ? 'null' : 'SIGKILL'
    if (demo.status !== 0 || !new RegExp(`was killed \\(${killed}\\)[^]*dequeued job_\\S+ send-digest`).test(demo.out)) {
      throw new Error(`the demo failed (${demo.status}):\n${demo.out}`)
    }
    return `installed from the tarballs, loaded ${path.basename(origin.out.trim())} from its package, demo ran (${demo.seconds} s)`
  } finally {
    fs.rmSync(app, { recursive: true, force: true })
  }
}

/** The suite on the memory backend on this target's binary: counts and skip reasons. */
function suite(target, rt) {
  const binary = path.join(root, 'npm', target.platform, binaryName(target))
  const result = runNode(rt, [path.join('scripts', 'test-js.js'), 'memory'], {
    cwd: root,
    env: { FALLBACK_MECHANISMS_NATIVE: binary, FALLBACK_MECHANISMS_TEST_SLOWDOWN: String(rt.slowdown || 1) },
    log: `${target.platform}-suite`,
  })
  const count = (name) => Number((new RegExp(`^# ${name} (\\d+)$`, 'm').exec(result.out) || [])[1] || 0)
  const skips = [...result.out.matchAll(/^(?:ok|not ok) \d+ - (.*) # SKIP (.*)$/gm)].map((m) => `${m[1]}: ${m[2]}`)
  const failures = [...result.out.matchAll(/^not ok \d+ - (.*)$/gm)].map((m) => m[1]).filter((t) => !t.includes('# SKIP'))
  return { status: result.status, pass: count('pass'), fail: count('fail'), skipped: count('skipped'), skips, failures, seconds: result.seconds, log: result.file }
}

function testTarget(target, { smoke: smokeOnly }) {
  const binary = path.join(root, 'npm', target.platform, binaryName(target))
  if (!fs.existsSync(binary)) throw new Error(`${path.relative(root, binary)} is missing: run npm run build:platforms -- --target ${target.triple}`)
  if (target.os === 'darwin') {
    const found = checkDarwin(binary, target)
    return [`structural check passed: Mach-O ${target.cpu}, macOS ${found.minos}+, napi_register_module_v1 exported, only libSystem and N-API undefined, ad-hoc signature verified (${found.signature.pages} pages); not run: ${runtime(target).none}`]
  }
  const rt = runtime(target)
  return rt.around(() => {
    const lines = [`smoke: ${smoke(target, rt)}`]
    if (smokeOnly) return lines
    const result = suite(target, rt)
    lines.push(`suite (memory backend): ${result.pass} passed, ${result.fail} failed, ${result.skipped} skipped in ${result.seconds} s (log: ${path.relative(root, result.log)})`)
    for (const skip of result.skips) lines.push(`  skipped: ${skip}`)
    for (const failure of result.failures) lines.push(`  FAILED: ${failure}`)
    if (result.status !== 0 || result.fail) throw Object.assign(new Error('the suite failed'), { lines })
    return lines
  })
}

function testPlatforms() {
  const options = parseArgs(process.argv.slice(2))
  fs.mkdirSync(LOGS, { recursive: true })
  const report = []
  let failed = 0
  for (const target of options.targets) {
    console.log(`\n== ${target.platform}`)
    try {
      report.push(`${target.platform}: ok`, ...testTarget(target, options).map((l) => `  ${l}`))
    } catch (error) {
      failed++
      report.push(`${target.platform}: FAILED: ${error.message}`, ...(error.lines || []).map((l) => `  ${l}`))
    }
  }
  console.log(`\n${report.join('\n')}`)
  console.log(`\nplatforms: ${options.targets.length - failed} passed, ${failed} failed`)
  process.exitCode = failed ? 1 : 0
}

if (require.main === module) testPlatforms()
