'use strict'

// npm run build:platforms [-- --target <rust triple>]… [--profile <cargo profile>]
//
// Cross-builds the addon for every shipped platform (scripts/platform.js,
// TARGETS) on this Debian x86_64 machine, one target after the other,
// installing what each needs when missing (scripts/platforms/recipes.js),
// then writes each binary into its platform package (npm/<platform>/),
// signs the macOS ones, and packs the platform packages and the main
// package (with the platform packages as optionalDependencies) into dist/.
// Built with the release profile unless told otherwise; .ci/run's smoke
// build asks for the lighter `cross-smoke` profile.

const fs = require('node:fs')
const path = require('node:path')
const { TARGETS } = require('../platform')
const { root, binaryName } = require('./manifest')
const { run, output, zig, cargoZigbuild } = require('./tools')
const { recipe, aptFor, BUILD_STD } = require('./recipes')
const { signDarwin } = require('./darwin')
const { packAll } = require('./pack')

const TARGET_DIR = path.join(root, 'target', 'platforms')

/** `--target a --target b --profile p` → { triples, profile }; every target when none is named. */
function parseArgs(argv) {
  const triples = []
  let profile = 'release'
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') triples.push(argv[++i])
    else if (argv[i] === '--profile') profile = argv[++i]
    else throw new Error(`Unknown argument ${argv[i]}: use --target <rust triple> (repeatable) and --profile <cargo profile>`)
  }
  for (const triple of triples) {
    if (!TARGETS.some((t) => t.triple === triple)) {
      throw new Error(`Unknown target ${triple}: one of ${TARGETS.map((t) => t.triple).join(', ')}`)
    }
  }
  return { targets: triples.length ? TARGETS.filter((t) => triples.includes(t.triple)) : TARGETS, profile }
}

/** The environment and cargo arguments that build `target` with `tools`. */
function command(target, r, profile, tools) {
  const env = { ...process.env, ...(r.env ? r.env() : {}) }
  // The host build keeps rustup's toolchain; the others use Debian's Rust.
  const rust = r.cargo === 'host' ? path.dirname(output('rustup', ['which', 'cargo'])) : '/usr/bin'
  env.PATH = [rust, ...(r.path ? r.path() : []), ...(r.zig ? [tools.zig, tools.zigbuild] : []), env.PATH].join(path.delimiter)
  const key = target.triple.replaceAll('-', '_').toUpperCase()
  if (r.rustflags) env[`CARGO_TARGET_${key}_RUSTFLAGS`] = r.rustflags.join(' ')
  const args = [r.zig ? 'zigbuild' : 'build', '--locked', '--profile', profile, '--target', r.zig || target.triple, '--target-dir', TARGET_DIR]
  if (r.buildStd) {
    // Nightly-only flag on a stable compiler: the way to build std for a
    // target whose std is not packaged.
    env.RUSTC_BOOTSTRAP = '1'
    args.push(...BUILD_STD)
  }
  return { env, args }
}

function artifact(target, profile) {
  const dir = path.join(TARGET_DIR, target.triple, profile === 'dev' ? 'debug' : profile)
  if (target.os === 'win32') return path.join(dir, 'fallback_mechanisms.dll')
  if (target.os === 'darwin') return path.join(dir, 'libfallback_mechanisms.dylib')
  return path.join(dir, 'libfallback_mechanisms.so')
}

function build({ targets, profile }) {
  const recipes = targets.map((t) => recipe(t.triple))
  aptFor(recipes)
  const tools = recipes.some((r) => r.zig) ? { zig: zig(), zigbuild: cargoZigbuild() } : {}
  const times = []
  for (const [i, target] of targets.entries()) {
    const started = Date.now()
    console.log(`\n== ${target.platform} (${target.triple}, profile ${profile})`)
    const { env, args } = command(target, recipes[i], profile, tools)
    run('nice', ['cargo', ...args], { cwd: root, env })
    const binary = path.join(root, 'npm', target.platform, binaryName(target))
    fs.copyFileSync(artifact(target, profile), binary)
    if (target.os === 'darwin') signDarwin(binary, target)
    times.push(`${target.platform}: ${Math.round((Date.now() - started) / 1000)} s`)
  }
  packAll(targets)
  console.log(`\nBuilt (${profile}):\n  ${times.join('\n  ')}`)
}

if (require.main === module) {
  try {
    build(parseArgs(process.argv.slice(2)))
  } catch (error) {
    console.error(error.message)
    process.exit(1)
  }
}

module.exports = { parseArgs }
