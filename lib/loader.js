'use strict'

// Finds the native addon of this platform, in order: the platform package
// npm installed as an optional dependency (fallback-mechanisms-<platform>),
// then fallback-mechanisms.<platform>.node beside the package (the
// repository's own build, or one built from source at install time by
// scripts/install.js). When none fits, one sentence that names the
// platform and the fix. A bundled copy of this file gets a sentence of its
// own (lib/bundled.js).

const path = require('node:path')
const { TARGETS, platformName, packageName, localFiles } = require('../scripts/platform.js')
const { bundledAt } = require('./bundled.js')

/** Whether `error` says that `id` itself is missing (not one of its imports). */
function missing(error, id) {
  return error?.code === 'MODULE_NOT_FOUND' && String(error.message).includes(id)
}

function missingSentence(platform) {
  if (!TARGETS.some((target) => target.platform === platform)) {
    return (
      `fallback-mechanisms has no prebuilt native binary for ${platform}: ` +
      'reinstall it with a Rust toolchain present (https://rustup.rs) to build one from source.'
    )
  }
  return (
    `fallback-mechanisms has no native binary for ${platform}: install its optional dependency ` +
    `${packageName(platform)} (npm skips it with --omit=optional or --no-optional), ` +
    'or reinstall with a Rust toolchain present (https://rustup.rs) to build one from source.'
  )
}

/**
 * The addon, or an error with one sentence. The defaults are this
 * process's facts; tests hand in others. The ids are computed, not
 * written out: a bundler then leaves them to run time, and `next build`
 * without serverExternalPackages stops on the bundled sentence rather than
 * on a `.node` file it cannot place.
 */
function loadNative({
  platform = platformName(),
  dir = path.join(__dirname, '..'),
  load = require,
  bundled = bundledAt(__filename),
  chosen = process.env.FALLBACK_MECHANISMS_NATIVE,
} = {}) {
  if (bundled) throw new Error(bundled)
  // A binary named outright (npm run test:platforms runs the suite on
  // each platform's build this way): that one, or an error.
  const attempts = chosen ? [chosen] : [packageName(platform), ...localFiles(platform).map((file) => path.join(dir, file))]
  let failure = null
  for (const id of attempts) {
    try {
      return load(id)
    } catch (error) {
      if (!missing(error, id)) failure ??= { id, error }
    }
  }
  if (failure) {
    throw new Error(
      `fallback-mechanisms found a native binary for ${platform} (${failure.id}) but cannot load it: ${failure.error.message}`,
      { cause: failure.error },
    )
  }
  throw new Error(chosen ? `fallback-mechanisms: FALLBACK_MECHANISMS_NATIVE names ${chosen}, which does not exist.` : missingSentence(platform))
}

module.exports = { loadNative, missingSentence }
