'use strict'

// The macOS binaries are built here but cannot run here, so they are
// checked for what would make macOS refuse them: a Mach-O of the right
// architecture, `napi_register_module_v1` exported, every undefined
// symbol either N-API (looked up in the node process at load time) or
// from libSystem, no other library linked, and an ad-hoc code signature
// whose page hashes match the file (Apple silicon kills unsigned code).
// The signature is made by zig's linker on arm64 and by adhoc-sign.js on
// x86_64, and is checked here after the build (a strip after linking would
// invalidate it).

const crypto = require('node:crypto')
const fs = require('node:fs')
const { output } = require('./tools')
const { adhocSign } = require('./adhoc-sign')

const CPU = { arm64: 0x0100000c, x64: 0x01000007 }
const LC_CODE_SIGNATURE = 0x1d
const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0
const CSMAGIC_CODEDIRECTORY = 0xfade0c02
const CS_ADHOC = 0x2
const HASHES = { 1: 'sha1', 2: 'sha256' }

/** The ad-hoc signature of a Mach-O file: each code page's hash checked. */
function verifySignature(file) {
  const buf = fs.readFileSync(file)
  const ncmds = buf.readUInt32LE(16)
  let offset = 32
  let signature = null
  for (let i = 0; i < ncmds; i++) {
    const cmd = buf.readUInt32LE(offset)
    if (cmd === LC_CODE_SIGNATURE) signature = { at: buf.readUInt32LE(offset + 8), size: buf.readUInt32LE(offset + 12) }
    offset += buf.readUInt32LE(offset + 4)
  }
  if (!signature) throw new Error(`${file} has no code signature`)
  // The signature is big-endian: a SuperBlob indexing its blobs.
  const blob = buf.subarray(signature.at, signature.at + signature.size)
  if (blob.readUInt32BE(0) !== CSMAGIC_EMBEDDED_SIGNATURE) throw new Error(`${file}: not an embedded signature`)
  const count = blob.readUInt32BE(8)
  for (let i = 0; i < count; i++) {
    const cd = blob.subarray(blob.readUInt32BE(12 + i * 8 + 4))
    if (cd.readUInt32BE(0) !== CSMAGIC_CODEDIRECTORY) continue
    const flags = cd.readUInt32BE(12)
    const hashOffset = cd.readUInt32BE(16)
    const codeSlots = cd.readUInt32BE(28)
    const codeLimit = cd.readUInt32BE(32)
    const hashSize = cd.readUInt8(36)
    const algorithm = HASHES[cd.readUInt8(37)]
    const pageSize = 2 ** cd.readUInt8(39)
    if (!(flags & CS_ADHOC)) throw new Error(`${file}: the signature is not ad-hoc`)
    if (codeLimit !== signature.at) throw new Error(`${file}: the signature covers ${codeLimit} bytes, not the ${signature.at} before it`)
    for (let page = 0; page < codeSlots; page++) {
      const data = buf.subarray(page * pageSize, Math.min((page + 1) * pageSize, codeLimit))
      const want = cd.subarray(hashOffset + page * hashSize, hashOffset + (page + 1) * hashSize)
      const got = crypto.createHash(algorithm).update(data).digest().subarray(0, hashSize)
      if (!got.equals(want)) throw new Error(`${file}: page ${page} does not match its signed hash (modified after signing)`)
    }
    if (codeSlots !== Math.ceil(codeLimit / pageSize)) throw new Error(`${file}: the signature does not cover every page`)
    return { pages: codeSlots, algorithm }
  }
  throw new Error(`${file}: the signature has no code directory`)
}

/** The structural check of one darwin binary; returns what it found, throws on a fault. */
function checkDarwin(file, target) {
  const buf = fs.readFileSync(file)
  if (buf.readUInt32LE(0) !== 0xfeedfacf) throw new Error(`${file} is not a 64-bit Mach-O file`)
  if (buf.readUInt32LE(4) !== CPU[target.cpu]) throw new Error(`${file} is not built for ${target.cpu}`)
  // --dylibs-used lists the binary's own install name too.
  const id = output('llvm-objdump', ['--macho', '--dylib-id', file]).split('\n')[1]
  const libraries = output('llvm-objdump', ['--macho', '--dylibs-used', file]).split('\n').slice(1).map((l) => l.trim().split(' ')[0]).filter((lib) => lib !== id)
  const unexpected = libraries.filter((lib) => lib !== '/usr/lib/libSystem.B.dylib')
  if (unexpected.length) throw new Error(`${file} links ${unexpected.join(', ')} (only libSystem is expected)`)
  const exported = output('llvm-nm', ['--extern-only', '--defined-only', file]).split('\n')
  if (!exported.some((line) => line.endsWith(' _napi_register_module_v1'))) throw new Error(`${file} does not export napi_register_module_v1`)
  const undefinedSymbols = output('llvm-nm', ['-m', '--undefined-only', file]).split('\n').filter(Boolean)
  const foreign = undefinedSymbols.filter((line) => !line.endsWith('(from libSystem)') && !/ _napi_\w+ \(dynamically looked up\)$/.test(line))
  if (foreign.length) throw new Error(`${file} needs symbols from outside libSystem and N-API:\n${foreign.join('\n')}`)
  const signature = verifySignature(file)
  const minos = /minos (\S+)/.exec(output('llvm-objdump', ['--macho', '--private-headers', file]))
  return { libraries, undefinedSymbols: undefinedSymbols.length, signature, minos: minos && minos[1] }
}

/** Signs `file` ad hoc where zig did not (x86_64), then checks it. */
function signDarwin(file, target) {
  const buf = fs.readFileSync(file)
  let signed = false
  for (let i = 0, offset = 32; i < buf.readUInt32LE(16); i++, offset += buf.readUInt32LE(offset + 4)) {
    if (buf.readUInt32LE(offset) === LC_CODE_SIGNATURE) signed = true
  }
  if (!signed) adhocSign(file)
  const found = checkDarwin(file, target)
  console.log(
    `${target.platform}: Mach-O ${target.cpu}, macOS ${found.minos}+, exports napi_register_module_v1, ` +
      `${found.undefinedSymbols} undefined symbols all from libSystem or N-API, ` +
      `ad-hoc signature verified (${found.signature.pages} pages, ${found.signature.algorithm})`,
  )
}

module.exports = { checkDarwin, verifySignature, signDarwin }
