'use strict'

// The napi-rs name of the platform this process runs on (the suffix of the
// native binary: fallback-mechanisms.<name>.node), and the file cargo builds.

function isMusl() {
  if (process.platform !== 'linux') return false
  try {
    return !process.report.getReport().header.glibcVersionRuntime
  } catch {
    return false
  }
}

function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function cargoArtifact() {
  if (process.platform === 'win32') return 'fallback_mechanisms.dll'
  if (process.platform === 'darwin') return 'libfallback_mechanisms.dylib'
  return 'libfallback_mechanisms.so'
}

module.exports = { platformName, cargoArtifact }
