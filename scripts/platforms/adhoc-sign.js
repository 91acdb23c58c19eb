'use strict'

// An ad-hoc code signature for a Mach-O file that has none (zig signs its
// arm64 output itself, not its x86_64 output): one CodeDirectory of SHA-256
// page hashes in an embedded-signature SuperBlob at the end of __LINKEDIT,
// named by a new LC_CODE_SIGNATURE load command, as `codesign -s -` makes.

const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')

const LC_SEGMENT_64 = 0x19
const LC_CODE_SIGNATURE = 0x1d
const PAGE = 4096

function adhocSign(file) {
  let buf = fs.readFileSync(file)
  const ncmds = buf.readUInt32LE(16)
  const sizeofcmds = buf.readUInt32LE(20)
  let offset = 32
  let linkedit = null
  let text = null
  let firstSection = Infinity
  for (let i = 0; i < ncmds; i++) {
    const cmd = buf.readUInt32LE(offset)
    if (cmd === LC_CODE_SIGNATURE) throw new Error(`${file} is already signed`)
    if (cmd === LC_SEGMENT_64) {
      const name = buf.toString('latin1', offset + 8, offset + 24).replace(/\0+$/, '')
      if (name === '__LINKEDIT') linkedit = offset
      if (name === '__TEXT') text = offset
      const nsects = buf.readUInt32LE(offset + 64)
      for (let s = 0; s < nsects; s++) {
        const sectionOffset = buf.readUInt32LE(offset + 72 + s * 80 + 48)
        if (sectionOffset) firstSection = Math.min(firstSection, sectionOffset)
      }
    }
    offset += buf.readUInt32LE(offset + 4)
  }
  if (linkedit === null || text === null) throw new Error(`${file} has no __TEXT or __LINKEDIT segment`)
  if (32 + sizeofcmds + 16 > firstSection) throw new Error(`${file} has no room for one more load command`)

  const codeLimit = Math.ceil(buf.length / 16) * 16
  const identifier = Buffer.from(`${path.basename(file)}\0`)
  const pages = Math.ceil(codeLimit / PAGE)
  const cdHeader = 88
  const hashOffset = cdHeader + identifier.length
  const cdLength = hashOffset + pages * 32
  const signatureLength = 12 + 8 + cdLength
  // The new load command and __LINKEDIT grown over the signature, then the hashes of the result.
  buf = Buffer.concat([buf, Buffer.alloc(codeLimit - buf.length + signatureLength)])
  buf.writeUInt32LE(ncmds + 1, 16)
  buf.writeUInt32LE(sizeofcmds + 16, 20)
  buf.writeUInt32LE(LC_CODE_SIGNATURE, 32 + sizeofcmds)
  buf.writeUInt32LE(16, 32 + sizeofcmds + 4)
  buf.writeUInt32LE(codeLimit, 32 + sizeofcmds + 8)
  buf.writeUInt32LE(signatureLength, 32 + sizeofcmds + 12)
  const linkeditFileoff = Number(buf.readBigUInt64LE(linkedit + 40))
  const linkeditSize = BigInt(codeLimit + signatureLength - linkeditFileoff)
  buf.writeBigUInt64LE(linkeditSize, linkedit + 48)
  buf.writeBigUInt64LE(((linkeditSize + BigInt(PAGE - 1)) / BigInt(PAGE)) * BigInt(PAGE), linkedit + 32)

  const cd = Buffer.alloc(cdLength)
  cd.writeUInt32BE(0xfade0c02, 0) // CSMAGIC_CODEDIRECTORY
  cd.writeUInt32BE(cdLength, 4)
  cd.writeUInt32BE(0x20400, 8) // version with execSeg fields
  cd.writeUInt32BE(0x2, 12) // CS_ADHOC
  cd.writeUInt32BE(hashOffset, 16)
  cd.writeUInt32BE(cdHeader, 20) // identOffset
  cd.writeUInt32BE(0, 24) // nSpecialSlots
  cd.writeUInt32BE(pages, 28)
  cd.writeUInt32BE(codeLimit, 32)
  cd.writeUInt8(32, 36) // hashSize
  cd.writeUInt8(2, 37) // SHA-256
  cd.writeUInt8(0, 38) // platform
  cd.writeUInt8(12, 39) // log2(page size)
  cd.writeBigUInt64BE(buf.readBigUInt64LE(text + 40), 64) // execSegBase
  cd.writeBigUInt64BE(buf.readBigUInt64LE(text + 48), 72) // execSegLimit
  identifier.copy(cd, cdHeader)
  for (let page = 0; page < pages; page++) {
    const data = buf.subarray(page * PAGE, Math.min((page + 1) * PAGE, codeLimit))
    crypto.createHash('sha256').update(data).digest().copy(cd, hashOffset + page * 32)
  }
  const blob = buf.subarray(codeLimit)
  blob.writeUInt32BE(0xfade0cc0, 0) // CSMAGIC_EMBEDDED_SIGNATURE
  blob.writeUInt32BE(signatureLength, 4)
  blob.writeUInt32BE(1, 8)
  blob.writeUInt32BE(0, 12) // CSSLOT_CODEDIRECTORY
  blob.writeUInt32BE(20, 16)
  cd.copy(blob, 20)
  fs.writeFileSync(file, buf)
}

module.exports = { adhocSign }
