'use strict'

// The package.json of each platform package (npm/<platform>/), in the
// napi-rs layout: named fallback-mechanisms-<platform>, at the main
// package's version, with the `os`, `cpu` (and on Linux `libc`) that npm
// matches against the installing machine, and the binary as `main`.

const path = require('node:path')

const root = path.join(__dirname, '..', '..')
const main = require(path.join(root, 'package.json'))

function binaryName(target) {
  return `fallback-mechanisms.${target.platform}.node`
}

function platformManifest(target) {
  return {
    name: `fallback-mechanisms-${target.platform}`,
    version: main.version,
    description: `The ${target.triple} binary of fallback-mechanisms (installed by it as an optional dependency).`,
    license: main.license,
    os: [target.os],
    cpu: [target.cpu],
    ...(target.libc ? { libc: [target.libc] } : {}),
    main: binaryName(target),
    files: [binaryName(target)],
    engines: main.engines,
  }
}

module.exports = { root, main, binaryName, platformManifest }
