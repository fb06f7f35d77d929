// Real gateway processes for multi-instance tests: `node bin/parley.js serve --config FILE --port 0`,
// each its own OS process (so `kill -9` is a real crash), all on one shared store, in front of one
// fake upstream running in the test process. The port is read from the startup banner
// (`Parley listening on http://127.0.0.1:PORT`).

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin', 'parley.js');

export interface Instance {
  name: string;
  url: string;
  pid: number;
  /** The official SDK, pointed at this instance. */
  client: OpenAI;
  /** stdout + stderr so far, for failure messages. */
  output(): string;
  /** SIGKILL: no shutdown code runs, exactly like a crashed machine. Resolves once the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful: open requests finish, the store closes), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Writes a config file (JSON is YAML) with one model on the fake upstream and the given state_storage. */
export async function writeConfig(
  dir: string,
  name: string,
  stateStorage: Record<string, unknown>,
  upstreamUrl: string,
): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    state_storage: stateStorage,
    model_providers: [{ model: 'openai/gpt-4o-mini', base_url: upstreamUrl, access_key: 'test-key', default: true }],
  };
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

export async function startInstance(name: string, configPath: string): Promise<Instance> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', configPath, '--port', '0'], {
    cwd: REPO,
    env: { ...process.env, PARLEY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let output = '';
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    output = (output + chunk).slice(-20_000);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`instance ${name} did not start within 60 s:\n${output}`));
    }, 60_000);
    child.stdout.on('data', (chunk: string) => {
      output = (output + chunk).slice(-20_000);
      const match = /Parley listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`instance ${name} exited during startup (${child.exitCode ?? child.signalCode}):\n${output}`));
    });
  });
  const gone = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  };
  return {
    name,
    url,
    pid: child.pid as number,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'client-key', maxRetries: 0, timeout: 120_000 }),
    output: () => output,
    kill9: () => gone('SIGKILL'),
    async stop() {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone('SIGTERM');
      clearTimeout(timer);
    },
  };
}

/** POSTs JSON to an instance; returns the status and parsed body. */
export async function post(
  instance: Instance,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${instance.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function get(instance: Instance, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${instance.url}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/**
 * Starts a streaming turn and resolves once its first text delta arrived (the model is mid-answer),
 * with the response id. The rest of the stream is read in the background; `finished` settles when
 * the connection ends (it rejects or ends early when the instance is killed).
 */
export async function startStreamingTurn(
  instance: Instance,
  body: Record<string, unknown>,
): Promise<{ id: string; finished: Promise<string> }> {
  const response = await fetch(`${instance.url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`streaming turn: HTTP ${response.status}: ${await response.text()}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  let parsed = 0;
  let id: string | null = null;
  let delta = false;
  while (id === null || !delta) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before the first delta:\n${text}`);
    text += value;
    // Whole SSE events only: each ends with a blank line.
    for (let end = text.indexOf('\n\n', parsed); end !== -1; end = text.indexOf('\n\n', parsed)) {
      const data = text
        .slice(parsed, end)
        .split('\n')
        .find((line) => line.startsWith('data: '));
      parsed = end + 2;
      if (data === undefined || data === 'data: [DONE]') continue;
      const event = JSON.parse(data.slice(6)) as { type: string; response?: { id: string } };
      if (event.type === 'response.created') id = event.response?.id ?? null;
      if (event.type === 'response.output_text.delta') delta = true;
    }
  }
  const finished = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += value;
    }
  })();
  finished.catch(() => {});
  return { id, finished };
}

/** Polls `check` until it returns a value (not undefined), or throws after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
