'use strict'

// The native loader (lib/loader.js): which platform it names, where it
// looks and in what order, the one sentence when nothing fits (also for a
// platform that has no prebuilt binary at all), and the sentence when a
// bundler copied it out of node_modules. Every fact of the process is
// handed in, so this runs the same on every platform.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')

const { loadNative } = require('../lib/loader.js')
const { bundledAt } = require('../lib/bundled.js')
const { TARGETS, platformName, isMusl, localFiles } = require('../scripts/platform.js')

const notFound = (id) => Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' })

/** A `require` that knows only `present` (id → value), recording what it was asked. */
function fakeRequire(present = {}) {
  const asked = []
  const load = (id) => {
    asked.push(id)
    if (id in present) {
      if (present[id] instanceof Error) throw present[id]
      return present[id]
    }
    throw notFound(id)
  }
  return { load, asked }
}

test('platform names: os, arch and libc as napi-rs spells them', () => {
  const glibc = () => false
  const musl = () => true
  assert.equal(platformName({ platform: 'linux', arch: 'arm64', musl: glibc }), 'linux-arm64-gnu')
  assert.equal(platformName({ platform: 'linux', arch: 'x64', musl }), 'linux-x64-musl')
  assert.equal(platformName({ platform: 'darwin', arch: 'arm64', musl }), 'darwin-arm64')
  assert.equal(platformName({ platform: 'win32', arch: 'x64', musl }), 'win32-x64-gnu')
  assert.equal(platformName({ platform: 'freebsd', arch: 'x64', musl }), 'freebsd-x64')
})

test('musl is read from the running process, not from ldd', () => {
  assert.equal(isMusl(() => ({ header: { glibcVersionRuntime: '2.36' } })), false)
  assert.equal(isMusl(() => ({ header: {} })), true)
  assert.equal(isMusl(() => { throw new Error('no report') }), false)
})

test('every shipped target has a platform package directory naming os, cpu and libc', () => {
  const fs = require('node:fs')
  for (const target of TARGETS) {
    const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'npm', target.platform, 'package.json'), 'utf8'))
    assert.equal(manifest.name, `fallback-mechanisms-${target.platform}`)
    assert.deepEqual(manifest.os, [target.os])
    assert.deepEqual(manifest.cpu, [target.cpu])
    assert.deepEqual(manifest.libc, target.libc ? [target.libc] : undefined)
    assert.equal(manifest.main, `fallback-mechanisms.${target.platform}.node`)
  }
})

test('the platform package comes first, then the file beside the package', () => {
  const addon = { from: 'package' }
  const { load, asked } = fakeRequire({ 'fallback-mechanisms-linux-arm64-gnu': addon })
  assert.equal(loadNative({ platform: 'linux-arm64-gnu', dir: '/pkg', load, bundled: null, chosen: null }), addon)
  assert.deepEqual(asked, ['fallback-mechanisms-linux-arm64-gnu'])

  const file = path.join('/pkg', 'fallback-mechanisms.linux-arm64-gnu.node')
  const local = fakeRequire({ [file]: { from: 'file' } })
  assert.deepEqual(loadNative({ platform: 'linux-arm64-gnu', dir: '/pkg', load: local.load, bundled: null, chosen: null }), { from: 'file' })
  assert.deepEqual(local.asked, ['fallback-mechanisms-linux-arm64-gnu', file])
})

test('FALLBACK_MECHANISMS_NATIVE names the binary outright: that one or an error', () => {
  const { load, asked } = fakeRequire({ '/builds/x.node': { from: 'chosen' } })
  assert.deepEqual(loadNative({ platform: 'linux-x64-gnu', load, bundled: null, chosen: '/builds/x.node' }), { from: 'chosen' })
  assert.deepEqual(asked, ['/builds/x.node'])
  assert.throws(() => loadNative({ platform: 'linux-x64-gnu', load, bundled: null, chosen: '/builds/none.node' }), {
    message: 'fallback-mechanisms: FALLBACK_MECHANISMS_NATIVE names /builds/none.node, which does not exist.',
  })
})

test('on Windows a source build with the MSVC toolchain is found too', () => {
  assert.deepEqual(localFiles('win32-x64-gnu'), ['fallback-mechanisms.win32-x64-gnu.node', 'fallback-mechanisms.win32-x64-msvc.node'])
})

test('nothing fits: one sentence naming the platform, its package and the fix', () => {
  const { load } = fakeRequire()
  assert.throws(() => loadNative({ platform: 'linux-arm64-musl', dir: '/pkg', load, bundled: null, chosen: null }), {
    message:
      'fallback-mechanisms has no native binary for linux-arm64-musl: install its optional dependency fallback-mechanisms-linux-arm64-musl ' +
      '(npm skips it with --omit=optional or --no-optional), or reinstall with a Rust toolchain present (https://rustup.rs) to build one from source.',
  })
})

test('an unknown platform gets the sentence too, not a crash', () => {
  for (const platform of ['freebsd-x64', 'linux-riscv64-gnu', 'undefined-undefined']) {
    const { load } = fakeRequire()
    assert.throws(() => loadNative({ platform, dir: '/pkg', load, bundled: null, chosen: null }), {
      message: `fallback-mechanisms has no prebuilt native binary for ${platform}: reinstall it with a Rust toolchain present (https://rustup.rs) to build one from source.`,
    })
  }
})

test('a binary that is there but does not load is named, with its error', () => {
  const broken = Object.assign(new Error('GLIBC_2.38 not found'), { code: 'ERR_DLOPEN_FAILED' })
  const { load } = fakeRequire({ 'fallback-mechanisms-linux-x64-gnu': broken })
  assert.throws(() => loadNative({ platform: 'linux-x64-gnu', dir: '/pkg', load, bundled: null, chosen: null }), (error) => {
    assert.equal(
      error.message,
      'fallback-mechanisms found a native binary for linux-x64-gnu (fallback-mechanisms-linux-x64-gnu) but cannot load it: GLIBC_2.38 not found',
    )
    assert.equal(error.cause, broken)
    return true
  })
})

test('bundled: a loader outside the package says serverExternalPackages', () => {
  const read = (manifests) => (file) => {
    if (file in manifests) return manifests[file]
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' })
  }
  const inPackage = path.join('/app', 'node_modules', 'fallback-mechanisms', 'lib', 'loader.js')
  const manifest = path.join('/app', 'node_modules', 'fallback-mechanisms', 'package.json')
  assert.equal(bundledAt(inPackage, read({ [manifest]: '{"name":"fallback-mechanisms"}' })), null)
  // Turbopack's bundle names a path that does not exist; webpack's "/";
  // another bundler's output sits in the app, beside the app's manifest.
  for (const file of ['/ROOT/node_modules/fallback-mechanisms/lib/loader.js', '/index.js', '/app/dist/server/index.js']) {
    const sentence = bundledAt(file, read({ [path.join('/app', 'dist', 'package.json')]: '{"name":"my-app"}' }))
    assert.match(sentence, /^fallback-mechanisms was bundled \(its loader runs from .*\), and a native addon must be loaded from node_modules: add 'fallback-mechanisms' to serverExternalPackages in next\.config \(or mark it external in your bundler\)\.$/)
  }
  const { load, asked } = fakeRequire()
  assert.throws(() => loadNative({ platform: 'linux-x64-gnu', load, bundled: 'bundled sentence', chosen: null }), { message: 'bundled sentence' })
  assert.deepEqual(asked, [], 'looks for no binary')
})

test('this checkout loads: the loader runs from inside the package', () => {
  assert.equal(bundledAt(require.resolve('../lib/loader.js')), null)
})
