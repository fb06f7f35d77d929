// Loaded with `node --import` into a gateway process by bench/ab.ts: serves other source text for
// chosen files of src/ (e.g. the committed version of a file being optimised), so two variants of
// Parley can run side by side on one machine and be measured in alternating blocks.
// PARLEY_BENCH_OVERRIDES = JSON {"/abs/path/src/x.ts": "source text", ...}

import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';

const overrides = new Map<string, string>(
  Object.entries(JSON.parse(process.env.PARLEY_BENCH_OVERRIDES ?? '{}') as Record<string, string>).map(
    ([path, source]) => [pathToFileURL(path).href, source],
  ),
);

registerHooks({
  load(url, context, nextLoad) {
    const source = overrides.get(url);
    if (source === undefined) return nextLoad(url, context);
    const result = nextLoad(url, context);
    return { ...result, source };
  },
});
