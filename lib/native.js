'use strict'

// The native addon, through the loader `napi build` generates
// (`binding.js`), with one clear sentence when there is no binary for this
// platform.

function loadNative() {
  try {
    return require('../binding.js')
  } catch (cause) {
    const { platformName } = require('../scripts/platform.js')
    throw new Error(
      `fallback-mechanisms has no native binary for ${platformName()}: reinstall it with a Rust toolchain present (https://rustup.rs) to build one from source.`,
      { cause },
    )
  }
}

module.exports = loadNative()
