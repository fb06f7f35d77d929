// Runs `node bin/parley.js ...` as a real child process, as a user or a cron job would.

import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin', 'parley.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** A file whose contents become stdin. */
  stdinFile?: string;
  /** Send stdout to this file (as `> file`) instead of capturing it. */
  stdoutFile?: string;
}

export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const stdin = options.stdinFile === undefined ? 'ignore' : openSync(options.stdinFile, 'r');
  const stdout = options.stdoutFile === undefined ? 'pipe' : openSync(options.stdoutFile, 'w');
  try {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO,
      env: { ...process.env, PARLEY_LOG_LEVEL: 'warn' },
      stdio: [stdin, stdout, 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (exitCode) => resolve(exitCode));
    });
    return { code, stdout: out, stderr: err };
  } finally {
    if (typeof stdin === 'number') closeSync(stdin);
    if (typeof stdout === 'number') closeSync(stdout);
  }
}

/** Writes a config file (JSON is YAML) holding just this state_storage section. */
export async function writeStorageConfig(dir: string, name: string, stateStorage: Record<string, unknown> | null): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, `${JSON.stringify({ state_storage: stateStorage }, null, 2)}\n`);
  return path;
}
