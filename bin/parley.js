#!/usr/bin/env node
// The `parley` command. In the repository Node runs the TypeScript sources directly (type
// stripping); inside node_modules type stripping is off, so an installed package runs the
// JavaScript that `npm pack` built into dist/.
const installed = import.meta.url.includes('/node_modules/');
const entry = new URL(installed ? '../dist/cli/main.js' : '../src/cli/main.ts', import.meta.url);
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
