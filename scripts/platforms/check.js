'use strict'

// npm run check:platforms: the packages' layout. Each npm/<platform>/
// package.json is the one manifest.js writes (name, the main package's
// version, os, cpu, libc, the binary as main); each packed platform
// tarball in dist/ holds exactly its manifest and its binary; the packed
// main package lists every platform package in optionalDependencies at
// its own version and carries no binary; the repository's package.json
// lists none (npm ci would look for them on the registry).

const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { TARGETS } = require('../platform')
const { root, main, binaryName, platformManifest } = require('./manifest')
const { output } = require('./tools')
const { DIST } = require('./pack')

function tarEntries(file) {
  return output('tar', ['-tzf', file]).split('\n').sort()
}

function tarJson(file, entry) {
  return JSON.parse(output('tar', ['-xzOf', file, entry]))
}

function checkLayout() {
  const checked = []
  assert.equal(main.optionalDependencies, undefined, 'the repository package.json lists no platform package')
  for (const target of TARGETS) {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'npm', target.platform, 'package.json'), 'utf8'))
    assert.deepEqual(manifest, platformManifest(target), `npm/${target.platform}/package.json`)
    const tarball = path.join(DIST, `${manifest.name}-${main.version}.tgz`)
    if (!fs.existsSync(tarball)) continue
    assert.deepEqual(tarEntries(tarball), ['package/package.json', `package/${binaryName(target)}`].sort(), path.basename(tarball))
    assert.deepEqual(tarJson(tarball, 'package/package.json'), manifest, `${path.basename(tarball)} package.json`)
    checked.push(path.basename(tarball))
  }
  const mainTarball = path.join(DIST, `fallback-mechanisms-${main.version}.tgz`)
  if (fs.existsSync(mainTarball)) {
    const packed = tarJson(mainTarball, 'package/package.json')
    assert.deepEqual(packed.optionalDependencies, Object.fromEntries(TARGETS.map((t) => [`fallback-mechanisms-${t.platform}`, main.version])))
    assert.deepEqual(tarEntries(mainTarball).filter((f) => f.endsWith('.node')), [], 'the main package carries no binary')
    for (const file of ['package/lib/loader.js', 'package/lib/bundled.js', 'package/scripts/platform.js', 'package/scripts/install.js']) {
      assert.ok(tarEntries(mainTarball).includes(file), `the main package has ${file}`)
    }
    checked.push(path.basename(mainTarball))
  }
  return checked
}

if (require.main === module) {
  try {
    const checked = checkLayout()
    console.log(`Package layout: ${TARGETS.length} platform manifests${checked.length ? `, tarballs ${checked.join(', ')}` : ''}: ok`)
  } catch (error) {
    console.error(`Package layout: ${error.message}`)
    process.exit(1)
  }
}

module.exports = { checkLayout }
