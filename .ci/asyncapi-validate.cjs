// Validates an AsyncAPI document with the AsyncAPI parser and fails on any
// error or warning it reports (hints and information are printed only).
// Usage: NODE_PATH=<node_modules holding @asyncapi/parser> node asyncapi-validate.cjs FILE
'use strict';
const fs = require('node:fs');
const { Parser } = require('@asyncapi/parser');

const severities = ['error', 'warning', 'information', 'hint'];

(async () => {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node asyncapi-validate.cjs FILE');
    process.exit(2);
  }
  const { document, diagnostics } = await new Parser().parse(fs.readFileSync(file, 'utf8'));
  let failed = !document;
  for (const d of diagnostics) {
    const severity = severities[d.severity] ?? String(d.severity);
    console.log(`${severity} ${d.code} at ${d.path.join('.') || '(root)'}: ${d.message}`);
    if (d.severity <= 1) failed = true;
  }
  if (failed) {
    console.error(`asyncapi: ${file} is not a valid AsyncAPI document`);
    process.exit(1);
  }
  console.log(`asyncapi: ${file} is valid AsyncAPI ${document.version()}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
