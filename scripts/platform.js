'use strict'

// The platforms this package ships a prebuilt native binary for, and the
// napi-rs name of the one this process runs on. A binary reaches an app as
// the npm package fallback-mechanisms-<platform> (npm/<platform>/, an
// optional dependency that npm installs only where its os, cpu and libc
// match) or as fallback-mechanisms.<platform>.node beside the package (a
// source build). Shipped with the package: lib/native.js and
// scripts/install.js use it, and so do the build scripts.

/** Each shipped platform: its napi-rs name, Rust target and npm filters. */
const TARGETS = [
  { platform: 'linux-x64-gnu', triple: 'x86_64-unknown-linux-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  { platform: 'linux-arm64-gnu', triple: 'aarch64-unknown-linux-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  { platform: 'linux-x64-musl', triple: 'x86_64-unknown-linux-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  { platform: 'linux-arm64-musl', triple: 'aarch64-unknown-linux-musl', os: 'linux', cpu: 'arm64', libc: 'musl' },
  { platform: 'win32-x64-gnu', triple: 'x86_64-pc-windows-gnu', os: 'win32', cpu: 'x64' },
  { platform: 'darwin-arm64', triple: 'aarch64-apple-darwin', os: 'darwin', cpu: 'arm64' },
  { platform: 'darwin-x64', triple: 'x86_64-apple-darwin', os: 'darwin', cpu: 'x64' },
]

/**
 * Whether this process runs on musl: asked of the running Node (its report
 * names the glibc it uses, and none on musl), not of /usr/bin/ldd, which
 * may belong to another libc than the one Node was built for.
 */
function isMusl(report = () => process.report.getReport()) {
  try {
    return !report().header.glibcVersionRuntime
  } catch {
    return false
  }
}

/** The napi-rs name of a platform: `linux-arm64-musl`, `darwin-x64`, … */
function platformName({ platform = process.platform, arch = process.arch, musl = isMusl } = {}) {
  if (platform === 'linux') return `linux-${arch}-${musl() ? 'musl' : 'gnu'}`
  // The shipped Windows binary is built with the GNU toolchain; it loads
  // into the official (MSVC-built) node.exe all the same.
  if (platform === 'win32') return `win32-${arch}-gnu`
  return `${platform}-${arch}`
}

/** The npm package that carries the binary of `platform`. */
function packageName(platform) {
  return `fallback-mechanisms-${platform}`
}

/** The file names a binary of `platform` may have beside the package. */
function localFiles(platform) {
  const names = [`fallback-mechanisms.${platform}.node`]
  // `napi build --platform` with Rust's default (MSVC) Windows toolchain.
  if (platform.startsWith('win32-')) names.push(`fallback-mechanisms.${platform.replace(/-gnu$/, '-msvc')}.node`)
  return names
}

function cargoArtifact(platform = process.platform) {
  if (platform === 'win32') return 'fallback_mechanisms.dll'
  if (platform === 'darwin') return 'libfallback_mechanisms.dylib'
  return 'libfallback_mechanisms.so'
}

module.exports = { TARGETS, isMusl, platformName, packageName, localFiles, cargoArtifact }
