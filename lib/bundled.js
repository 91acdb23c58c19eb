'use strict'

// Whether a bundler copied the package's JavaScript into its own output
// (Next.js without `serverExternalPackages`, Turbopack or webpack). The
// bundle then runs from another place (Turbopack writes /ROOT/… for
// __filename, webpack "/"), where neither the addon nor its platform
// package can be found; and Next.js loads every route while it builds, so
// saying so here fails `next build` with this sentence, not the server at
// its first request.

const fs = require('node:fs')
const path = require('node:path')

/** One sentence when the loader at `file` is not inside the package, else null. */
function bundledAt(file, readFile = fs.readFileSync) {
  try {
    const manifest = JSON.parse(readFile(path.join(path.dirname(file), '..', 'package.json'), 'utf8'))
    if (manifest.name === 'fallback-mechanisms') return null
  } catch {
    // no package.json there: bundled
  }
  return (
    `fallback-mechanisms was bundled (its loader runs from ${file}, not from node_modules/fallback-mechanisms), ` +
    "and a native addon must be loaded from node_modules: add 'fallback-mechanisms' to serverExternalPackages in next.config " +
    '(or mark it external in your bundler).'
  )
}

module.exports = { bundledAt }
