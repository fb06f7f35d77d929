// Loaded with `node --import` into the Portkey gateway process, never into Parley.
//
// @portkey-ai/gateway 1.15.2 declares "@hono/node-server": "^1.3.3". Versions below 1.14.2 do not
// start on Node 24 ("Failed to find Response internal state key", Portkey-AI/gateway#1604), and
// the newer ones npm resolves (1.19.x) keep a fetch() Response's immutable Headers when a Response
// is rebuilt as `new Response(body, fetchedResponse)`; Portkey then appends its headers to them and
// every streaming request fails with `TypeError: immutable` (Portkey-AI/gateway#1389, fixed in
// @hono/node-server by honojs/node-server#382, released only in 2.x, outside Portkey's range).
// Portkey's postinstall (patch-package) does not cover it. This hook applies that upstream fix in
// memory, when the module is loaded: headers from a foreign Response are copied, not shared.
// Nothing on disk changes, and the peer runs its own unmodified code otherwise.

import { registerHooks } from 'node:module';

const MODULE = '/@hono/node-server/dist/index.mjs';
const BROKEN = 'this[cacheKey] = [init?.status || 200, body, headers || init?.headers];';
const FIXED =
  'this[cacheKey] = [init?.status || 200, body, headers || (init instanceof GlobalResponse ? new Headers(init.headers) : init?.headers)];';

registerHooks({
  load(url, context, nextLoad) {
    const result = nextLoad(url, context);
    if (!url.endsWith(MODULE)) return result;
    const source = String(result.source);
    // Already fixed (a newer @hono/node-server): leave it alone.
    if (!source.includes(BROKEN)) return result;
    return { ...result, source: source.replace(BROKEN, FIXED) };
  },
});
