'use strict'

// Runs when an app installs this package. The package ships a prebuilt
// binary for linux-x64-gnu; on any other platform this builds one from the
// shipped Rust sources when cargo is present, and otherwise stops the
// install with a message that says what is missing and how to get it.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { platformName, cargoArtifact } = require('./platform')

const root = path.join(__dirname, '..')
const name = platformName()
const binary = path.join(root, `fallback-mechanisms.${name}.node`)

// In a clone of the repository, `npm install` builds through `prepare`.
if (fs.existsSync(path.join(root, '__test__'))) process.exit(0)
if (fs.existsSync(binary) && !process.env.FALLBACK_MECHANISMS_BUILD_FROM_SOURCE) process.exit(0)

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
