'use strict'

// How each target is built on a Debian x86_64 machine (see
// scripts/platforms/build.js). The Linux and macOS targets link with zig
// through cargo-zigbuild: zig carries glibc stubs of any version (the Linux
// gnu builds ask for glibc 2.17, so the binary needs nothing newer), its
// own musl, and macOS's libSystem stubs. Rust's standard library comes from
// rustup for the host, from Debian's libstd-rust-web-dev:arm64 for arm64
// Linux, and is built from Debian's rust-web-src (-Zbuild-std) where
// neither has one. Windows links with mingw-w64.

const fs = require('node:fs')
const path = require('node:path')
const { CACHE, apt, output, run } = require('./tools')

const GLIBC = '2.17'
/** Debian's Rust (1.96), used for every target but the host's. */
const DEBIAN_RUST = ['rustc-web', 'cargo-web']
const BUILD_STD = ['-Zbuild-std=std,panic_unwind']

/**
 * napi-build on windows-gnu links against a `libnode.dll`; N-API is
 * resolved from node.exe at run time, so an empty DLL satisfies it (the
 * addon imports nothing from it).
 */
function libnodeStandIn() {
  const dir = path.join(CACHE, 'libnode')
  const dll = path.join(dir, 'libnode.dll')
  if (!fs.existsSync(dll)) {
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, 'empty.c'), 'void fallback_mechanisms_libnode_stand_in(void) {}\n')
    run('x86_64-w64-mingw32-gcc', ['-shared', '-o', dll, path.join(dir, 'empty.c')])
  }
  return dir
}

/**
 * Empty Security and CoreFoundation frameworks: crates in the TLS stack
 * name them for linking on every Apple target although the addon calls
 * none of their functions (Cargo.toml: webpki-roots on macOS), and zig has
 * no SDK. -dead_strip_dylibs then drops them from the binary, which the
 * structural check confirms.
 */
function frameworkStubs() {
  const dir = path.join(CACHE, 'frameworks')
  for (const name of ['Security', 'CoreFoundation']) {
    const framework = path.join(dir, `${name}.framework`)
    fs.mkdirSync(framework, { recursive: true })
    fs.writeFileSync(
      path.join(framework, `${name}.tbd`),
      `--- !tapi-tbd\ntbd-version: 4\ntargets: [ x86_64-macos, arm64-macos ]\n` +
        `install-name: '/System/Library/Frameworks/${name}.framework/Versions/A/${name}'\n...\n`,
    )
  }
  return dir
}

/** rustc strips Apple binaries with `rust-objcopy`, which Debian's Rust lacks. */
function objcopyLink() {
  const dir = path.join(CACHE, 'objcopy')
  const link = path.join(dir, 'rust-objcopy')
  if (!fs.existsSync(link)) {
    fs.mkdirSync(dir, { recursive: true })
    fs.symlinkSync(output('sh', ['-c', 'command -v llvm-objcopy']), link)
  }
  return dir
}

/**
 * The recipe of `triple`: which cargo (the host's rustup one, or Debian's),
 * the Debian packages, whether zig links it (and its target spelling),
 * whether std is built from source, the extra environment and PATH.
 */
function recipe(triple) {
  const envKey = triple.replaceAll('-', '_')
  switch (triple) {
    case 'x86_64-unknown-linux-gnu':
      return { cargo: 'host', apt: [], zig: `${triple}.${GLIBC}` }
    case 'aarch64-unknown-linux-gnu':
      return { cargo: 'debian', apt: [...DEBIAN_RUST, 'libstd-rust-web-dev:arm64'], zig: `${triple}.${GLIBC}` }
    case 'x86_64-unknown-linux-musl':
    case 'aarch64-unknown-linux-musl':
      return {
        cargo: 'debian',
        apt: [...DEBIAN_RUST, 'rust-web-src'],
        zig: triple,
        buildStd: true,
        // A cdylib on musl links libc dynamically, as Alpine's own addons do.
        rustflags: ['-C', 'target-feature=-crt-static'],
      }
    case 'x86_64-pc-windows-gnu':
      return {
        cargo: 'debian',
        apt: [...DEBIAN_RUST, 'rust-web-src', 'mingw-w64'],
        buildStd: true,
        env: () => ({
          [`CARGO_TARGET_${envKey.toUpperCase()}_LINKER`]: 'x86_64-w64-mingw32-gcc',
          [`CC_${envKey}`]: 'x86_64-w64-mingw32-gcc',
          [`AR_${envKey}`]: 'x86_64-w64-mingw32-ar',
          LIBNODE_PATH: libnodeStandIn(),
        }),
      }
    case 'aarch64-apple-darwin':
    case 'x86_64-apple-darwin':
      return {
        cargo: 'debian',
        apt: [...DEBIAN_RUST, 'rust-web-src', 'llvm'],
        zig: triple,
        buildStd: true,
        rustflags: ['-C', `link-arg=-F${frameworkStubs()}`, '-C', 'link-arg=-Wl,-dead_strip_dylibs'],
        // zig's default minimum macOS is its newest; 11.0 is the first
        // with Apple silicon, and what Node 20 itself asks for.
        env: () => ({ MACOSX_DEPLOYMENT_TARGET: '11.0' }),
        path: () => [objcopyLink()],
      }
    default:
      throw new Error(`No recipe for ${triple}`)
  }
}

/** Installs the Debian packages of `recipes`, all in one apt-get run. */
function aptFor(recipes) {
  apt([...new Set(recipes.flatMap((r) => r.apt))])
}

module.exports = { recipe, aptFor, BUILD_STD, GLIBC }
