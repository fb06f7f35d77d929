// The stateless peer: the Portkey AI gateway (@portkey-ai/gateway from npm), started from its
// published bin on a free loopback port, proxying Chat Completions to the fake upstream as an
// OpenAI-compatible provider (x-portkey-provider: openai + x-portkey-custom-host).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './databases.ts';
import { spawnTracked, stopChild, waitForHttp } from './procs.ts';

/** Node's lookup: `<dir>/node_modules/<name>` from `from` up to the root. */
function findPackage(name: string, from: string): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return null;
  }
}

export interface Peer {
  name: string;
  version: string;
  url: string;
  pid: number;
  startupMs: number;
  note: string;
  stop(): Promise<void>;
}

export function portkeyInfo(): { bin: string; version: string; honoNodeServer: string } | null {
  // Neither package has a main entry or exports its package.json: look in node_modules.
  const gatewayDir = findPackage('@portkey-ai/gateway', fileURLToPath(new URL('.', import.meta.url)));
  if (!gatewayDir) return null;
  try {
    const pkg = JSON.parse(readFileSync(join(gatewayDir, 'package.json'), 'utf8')) as { version: string };
    const honoDir = findPackage('@hono/node-server', gatewayDir);
    const hono = honoDir
      ? (JSON.parse(readFileSync(join(honoDir, 'package.json'), 'utf8')) as { version: string }).version
      : '?';
    return { bin: join(gatewayDir, 'build', 'start-server.js'), version: pkg.version, honoNodeServer: hono };
  } catch {
    return null;
  }
}

export async function startPortkey(cpu: string | null): Promise<Peer> {
  const info = portkeyInfo();
  if (!info) throw new Error('@portkey-ai/gateway is not installed');
  const port = await freePort();
  const hook = fileURLToPath(new URL('../peers/portkey-hono-fix.ts', import.meta.url));
  const started = performance.now();
  const child = spawnTracked(process.execPath, ['--import', hook, info.bin, `--port=${port}`, '--headless'], {
    cpu,
    env: { NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/`, 30_000);
  return {
    name: 'portkey',
    version: info.version,
    url,
    pid: child.pid ?? 0,
    startupMs: performance.now() - started,
    note: `@portkey-ai/gateway ${info.version} on @hono/node-server ${info.honoNodeServer}, with honojs/node-server#382 applied in memory (see bench/peers/portkey-hono-fix.ts); its startup prints a 1 s spinner`,
    stop: () => stopChild(child),
  };
}
