'use strict'

// Runs when an app installs this package. The prebuilt binaries come as
// platform packages (fallback-mechanisms-<platform>, optional dependencies
// that npm installs where os, cpu and libc match); where none was
// installed, this builds one from the shipped Rust sources when cargo is
// present, and otherwise stops the install with a message that says what
// is missing and how to get it.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { platformName, packageName, cargoArtifact } = require('./platform')

const root = path.join(__dirname, '..')
const name = platformName()
const binary = path.join(root, `fallback-mechanisms.${name}.node`)

// In a clone of the repository, `npm install` builds through `prepare`.
if (fs.existsSync(path.join(root, '__test__'))) process.exit(0)

function hasPlatformPackage() {
  try {
    require.resolve(`${packageName(name)}/package.json`, { paths: [root] })
    return true
  } catch {
    return false
  }
}

if (!process.env.FALLBACK_MECHANISMS_BUILD_FROM_SOURCE && (hasPlatformPackage() || fs.existsSync(binary))) process.exit(0)

function hasCargo() {
  try {
    execFileSync('cargo', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

if (!hasCargo()) {
  console.error(
    `fallback-mechanisms: there is no prebuilt native binary for ${name}, and no Rust toolchain to build one. ` +
      'Install Rust (https://rustup.rs, then open a new shell so that cargo is on the PATH) and run npm install again.',
  )
  process.exit(1)
}

console.log(`fallback-mechanisms: building the native binary for ${name} from source (a few minutes)`)
execFileSync('cargo', ['build', '--release', '--locked'], { cwd: root, stdio: 'inherit' })
fs.copyFileSync(path.join(root, 'target', 'release', cargoArtifact()), binary)
fs.rmSync(path.join(root, 'target'), { recursive: true, force: true })
console.log(`fallback-mechanisms: built ${path.basename(binary)}`)
