'use strict'

// Packs what a release publishes into dist/: each platform package that
// has its binary, and the main package as npm would pack the repository
// but with every platform package in `optionalDependencies` at the same
// version and without the repository's own *.node (the binaries come from
// the platform packages). The repository's package.json does not list
// them: they are not on the registry, and `npm ci` in a clone must not go
// looking for them.

const fs = require('node:fs')
const path = require('node:path')
const { TARGETS } = require('../platform')
const { root, main, binaryName } = require('./manifest')
const { output } = require('./tools')

const DIST = path.join(root, 'dist')

function npmPack(dir) {
  const name = output('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', DIST], { cwd: dir }).split('\n').pop()
  return path.join(DIST, name)
}

/** The main package's manifest as published. */
function mainManifest() {
  const manifest = { ...main, files: main.files.filter((f) => !f.endsWith('.node')) }
  delete manifest.devDependencies
  delete manifest.scripts.prepare
  manifest.optionalDependencies = Object.fromEntries(TARGETS.map((t) => [`fallback-mechanisms-${t.platform}`, main.version]))
  return manifest
}

/** dist/fallback-mechanisms-<version>.tgz, staged from what `npm pack` would take. */
function packMain() {
  const listed = JSON.parse(output('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root }))[0].files
  const stage = path.join(DIST, 'main')
  fs.rmSync(stage, { recursive: true, force: true })
  for (const { path: file } of listed) {
    if (file.endsWith('.node') || file === 'package.json') continue
    fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true })
    fs.copyFileSync(path.join(root, file), path.join(stage, file))
  }
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(mainManifest(), null, 2)}\n`)
  const tarball = npmPack(stage)
  fs.rmSync(stage, { recursive: true })
  return tarball
}

/** Packs the platform packages of `targets` whose binary is there, then the main package. */
function packAll(targets = TARGETS) {
  fs.mkdirSync(DIST, { recursive: true })
  const packed = []
  for (const target of targets) {
    const dir = path.join(root, 'npm', target.platform)
    if (fs.existsSync(path.join(dir, binaryName(target)))) packed.push(npmPack(dir))
  }
  packed.push(packMain())
  console.log(`\nPacked into dist/:\n  ${packed.map((f) => path.basename(f)).join('\n  ')}`)
  return packed
}

if (require.main === module) packAll()

module.exports = { DIST, packAll, mainManifest }
