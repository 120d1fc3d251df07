#!/usr/bin/env node
'use strict';
// The `xenring` command (see `xenring --help`); the code is in lib/cli/.
const cli = require('../dist/cli/main');

cli.installLastResort();
cli.main(process.argv.slice(2));
