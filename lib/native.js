'use strict'

// The native addon of this platform (lib/loader.js finds it).

module.exports = require('./loader.js').loadNative()
