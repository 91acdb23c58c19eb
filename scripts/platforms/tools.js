'use strict'

// What the cross-builds and their tests need, installed when missing, the
// way the Redis tests install redis-server: Debian's packages with apt-get,
// zig and a musl Node from PyPI wheels (downloaded and unpacked, not
// installed into any Python), cargo-zigbuild from crates.io, and Node for
// other platforms from the npm registry's node-* packages. Everything that
// is not a Debian package lives in .platforms/ (ignored by git), pinned.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const os = require('node:os')
const { root } = require('./manifest')

const CACHE = path.join(root, '.platforms')
const ZIG = '0.17.1'
const CARGO_ZIGBUILD = '0.24.1'
const NODE = '22.23.3'
const NODE_MUSL = '22.20.0'

function run(command, args, options = {}) {
  console.log(`$ ${command} ${args.join(' ')}`)
  return execFileSync(command, args, { stdio: 'inherit', ...options })
}

function output(command, args, options = {}) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], ...options }).trim()
}

function installed(pkg) {
  try {
    return output('dpkg-query', ['-W', '-f=${Status}', pkg]) === 'install ok installed'
  } catch {
    return false
  }
}

/** Debian packages, installed when missing (`name:arm64` adds that architecture). */
function apt(packages) {
  const missing = packages.filter((pkg) => !installed(pkg))
  if (!missing.length) return
  if (missing.some((pkg) => pkg.endsWith(':arm64')) && !output('dpkg', ['--print-foreign-architectures']).split('\n').includes('arm64')) {
    run('dpkg', ['--add-architecture', 'arm64'])
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  run('apt-get', ['update', '-qq'], { env })
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env })
}

/** A PyPI wheel for `platform`, unpacked into .platforms/<dir>; returns that folder. */
function wheel(spec, dir, platform) {
  const target = path.join(CACHE, dir)
  if (fs.existsSync(path.join(target, '.complete'))) return target
  if (!installed('python3-pip') && !hasPip()) apt(['python3-pip'])
  const download = fs.mkdtempSync(path.join(os.tmpdir(), 'wheel-'))
  try {
    const args = ['-m', 'pip', 'download', '--quiet', '--no-deps', '--only-binary=:all:', '-d', download, spec]
    run('python3', platform ? [...args, '--platform', platform] : args)
    const file = fs.readdirSync(download).find((f) => f.endsWith('.whl'))
    fs.rmSync(target, { recursive: true, force: true })
    // A wheel is a zip file; Python (there for pip) unpacks it.
    run('python3', ['-m', 'zipfile', '-e', path.join(download, file), target])
    fs.writeFileSync(path.join(target, '.complete'), spec)
    return target
  } finally {
    fs.rmSync(download, { recursive: true, force: true })
  }
}

function hasPip() {
  try {
    output('python3', ['-m', 'pip', '--version'])
    return true
  } catch {
    return false
  }
}

/** The folder holding the `zig` binary (PyPI's ziglang wheel). */
function zig() {
  const dir = path.join(wheel(`ziglang==${ZIG}`, `zig-${ZIG}`), 'ziglang')
  fs.chmodSync(path.join(dir, 'zig'), 0o755)
  return dir
}

/** The folder holding `cargo-zigbuild`, built with the host's cargo. */
function cargoZigbuild() {
  const prefix = path.join(CACHE, `cargo-zigbuild-${CARGO_ZIGBUILD}`)
  const bin = path.join(prefix, 'bin')
  if (!fs.existsSync(path.join(bin, 'cargo-zigbuild'))) {
    run('cargo', ['install', '--quiet', '--locked', '--version', CARGO_ZIGBUILD, '--root', prefix, 'cargo-zigbuild'])
  }
  return bin
}

/** The node binary of the npm registry's `node-<os>-<cpu>` package. */
function npmNode(pkg) {
  const dir = path.join(CACHE, `${pkg}-${NODE}`)
  const exe = pkg.startsWith('node-win') ? path.join(dir, 'bin', 'node.exe') : path.join(dir, 'bin', 'node')
  if (fs.existsSync(exe)) return exe
  fs.mkdirSync(dir, { recursive: true })
  const tarball = output('npm', ['pack', '--silent', `${pkg}@${NODE}`], { cwd: dir }).split('\n').pop()
  run('tar', ['-xzf', tarball, '--strip-components=1', '-C', dir], { cwd: dir })
  fs.rmSync(path.join(dir, tarball))
  return exe
}

module.exports = { CACHE, NODE, NODE_MUSL, run, output, apt, wheel, zig, cargoZigbuild, npmNode, installed }
