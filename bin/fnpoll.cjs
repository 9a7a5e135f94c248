#!/usr/bin/env node
'use strict';
// fnpoll's command line, from the single-file build with V8's code cache (src/boot.cts says why).
require('../dist/src/boot.cjs').boot(process.argv.slice(2));
