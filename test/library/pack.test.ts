// The published package, as a user gets it: `npm run build` and `npm pack` on a copy of the
// package, `npm install <tarball>` (offline, from the npm cache) into an empty app, then with plain
// node (no type stripping inside node_modules): the README's library example against the fake
// upstream, the exported contract suite (`parley/testing`) on the packaged MemoryStore, and a type
// check of a consumer against the published .d.ts.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/server.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const NODE = process.execPath;

let dir: string;
let app: string;
let upstream: FakeUpstream;

async function sh(command: string, args: string[], cwd: string, env: Record<string, string> = {}, timeout = 60_000) {
  // Without the runner's own marker, a `node --test` started from here reports as a top-level run.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  try {
    return await run(command, args, { cwd, env: { ...inherited, ...env }, timeout, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** The README's library example: the first ```js block after the marker comment. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- This example is run, against the packed package, by test/library/pack.test.ts. -->');
  assert.notEqual(marker, -1, 'README marks its library example');
  const match = /```js\n([\s\S]*?)```/.exec(readme.slice(marker));
  assert.ok(match, 'a js block follows the marker');
  return match[1];
}

before(async () => {
  upstream = await startFakeUpstream();
  dir = await mkdtemp(join(tmpdir(), 'parley-pack-'));
  // A copy of the package, so the build never touches the working tree's dist/.
  const pkg = join(dir, 'pkg');
  await mkdir(pkg);
  for (const entry of ['package.json', 'README.md', 'parley.example.yaml', 'tsconfig.json', 'tsconfig.build.json', 'bin', 'src']) {
    await cp(join(ROOT, entry), join(pkg, entry), { recursive: true });
  }
  await symlink(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
  await sh('npm', ['run', 'build', '--silent'], pkg);
  const { stdout } = await sh('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], pkg);
  const tarball = join(dir, stdout.trim().split('\n').at(-1)!);

  app = join(dir, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await sh('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], app, {}, 120_000);
});

after(async () => {
  await upstream?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('runs the README library example with plain node', async () => {
    upstream.enqueue(
      { kind: 'text', text: 'Japan is wonderful.', usage: { prompt_tokens: 1000, completion_tokens: 100 } },
      { kind: 'text', text: 'Go in spring.', usage: { prompt_tokens: 2000, completion_tokens: 200 } },
    );
    await writeFile(join(app, 'example.mjs'), await readmeExample());
    const { stdout } = await sh(NODE, ['example.mjs'], app, { OPENAI_BASE_URL: upstream.url, OPENAI_API_KEY: 'test-key' });
    // 3000 input tokens at $0.15/M + 300 output tokens at $0.60/M.
    assert.equal(stdout, 'Japan is wonderful.\nGo in spring.\ncompleted: 2 turns, 3300 tokens, $0.000630\n');
    assert.deepEqual(
      upstream.lastRequest()?.body.messages.map((m: { content: string }) => m.content),
      ['I want to visit Japan.', 'Japan is wonderful.', 'When should I go?'],
    );
  });

  it('exports the contract suite as parley/testing: the packaged MemoryStore passes it', async () => {
    await writeFile(
      join(app, 'contract.test.mjs'),
      [
        "import { MemoryStore } from 'parley';",
        "import { runStoreContract } from 'parley/testing';",
        "runStoreContract('packed memory store', async () => ({ store: new MemoryStore({ maxEntries: 100000, ttlSeconds: null }) }));",
      ].join('\n'),
    );
    const { stdout } = await sh(NODE, ['--test', '--test-reporter=tap', 'contract.test.mjs'], app);
    assert.match(stdout, /^# fail 0$/m);
    const passed = Number(/^# pass (\d+)$/m.exec(stdout)?.[1]);
    assert.ok(passed > 50, `${passed} contract cases passed`);
  });

  it('publishes types a consumer type-checks against (.d.ts for both entry points)', async () => {
    await writeFile(
      join(app, 'check.ts'),
      [
        "import { ApiError, createParley, type ConversationStore, type Item, lastTurns, type Parley, type ResponseObject } from 'parley';",
        "import { runStoreContract, type MakeStore } from 'parley/testing';",
        'const parley: Parley = await createParley({ store: null, contextPolicy: lastTurns(3) });',
        "const response: ResponseObject = await parley.responses.create({ model: 'm', input: 'hi' });",
        "// @ts-expect-error input is required, as over HTTP",
        "await parley.responses.create({ model: 'm' });",
        'const items: Item[] = response.output;',
        'const make: MakeStore = async () => ({ store: null as unknown as ConversationStore });',
        'export { ApiError, items, make, runStoreContract };',
      ].join('\n'),
    );
    // @ai-sdk/provider's types import 'json-schema', whose types are not a dependency of anything here.
    await writeFile(
      join(app, 'shims.d.ts'),
      "declare module 'json-schema' {\n  export type JSONSchema7 = Record<string, unknown>;\n  export type JSONSchema7Definition = JSONSchema7 | boolean;\n}\n",
    );
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'es2023',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['check.ts', 'shims.d.ts'],
      }),
    );
    await sh(NODE, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app);
  });
});
