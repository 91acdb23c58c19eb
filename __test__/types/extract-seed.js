'use strict'

// Writes each ```typescript block of the user's usage document, unchanged,
// into seed/exampleN.ts so that `tsc` checks it against index.d.ts.

const fs = require('node:fs')
const path = require('node:path')

const doc = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'seed-usage.md'), 'utf8')
const blocks = [...doc.matchAll(/```typescript\n([\s\S]*?)```/g)].map((m) => m[1])
if (blocks.length === 0) throw new Error('no typescript examples found in the usage document')

const out = path.join(__dirname, 'seed')
fs.rmSync(out, { recursive: true, force: true })
fs.mkdirSync(out)
blocks.forEach((code, i) => {
  // `export {}` makes every example its own module, as it is in an app.
  fs.writeFileSync(path.join(out, `example${i + 1}.ts`), `${code}\nexport {};\n`)
})
console.log(`extracted ${blocks.length} examples from the usage document`)
