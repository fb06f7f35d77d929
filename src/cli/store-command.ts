// What `parley prune`, `export` and `import` share: read the config as `serve` does, open its
// store, run the command, close the store, and turn every failure into a readable message and an
// exit code. Store errors are written to be read as they are, and never hold the password.

import { resolveConfig } from '../config/load.ts';
import { ConfigError, type StateStorageConfig } from '../config/types.ts';
import { parseDuration } from '../config/duration.ts';
import { createStore, StoreNotAvailableError } from '../store/index.ts';
import type { ConversationStore } from '../store/types.ts';

export interface Output {
  write(text: string): unknown;
}

export interface StoreCommandOptions {
  /** --config FILE; else PARLEY_CONFIG, ./parley.yaml, or the environment (as `serve`). */
  configPath?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  stdout?: Output;
  stderr?: Output;
}

/** A problem with the command line or its input: reported as it is, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A problem the user can act on (no state storage, a bad file): reported as it is, exit code 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface ConfiguredStore {
  store: ConversationStore;
  storage: StateStorageConfig;
  /** Where the config came from (a file path, or the environment). */
  source: string;
}

/** Loads the configuration; throws CommandError when it has no state_storage. */
export async function loadStorageConfig(
  command: string,
  options: StoreCommandOptions,
): Promise<{ storage: StateStorageConfig; source: string }> {
  const { config, source } = await resolveConfig({
    ...(options.configPath ? { configPath: options.configPath } : {}),
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? process.env,
  });
  if (config.state_storage === null) {
    throw new CommandError(`${source}: no state_storage is configured, so there is nothing for \`parley ${command}\` to work on.`);
  }
  return { storage: config.state_storage, source };
}

/** Opens the store, runs `body`, closes the store (also when `body` throws). */
export async function withStore<T>(
  storage: StateStorageConfig,
  source: string,
  body: (configured: ConfiguredStore) => Promise<T>,
): Promise<T> {
  const store = await createStore(storage);
  await store.open();
  try {
    return await body({ store, storage, source });
  } finally {
    await store.close();
  }
}

/** Runs a command body, mapping its failures to messages on stderr and exit codes. */
export async function runCommand(
  command: string,
  options: StoreCommandOptions,
  body: (stdout: Output, stderr: Output) => Promise<number>,
): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  try {
    return await body(stdout, stderr);
  } catch (error) {
    if (error instanceof UsageError) {
      stderr.write(`parley ${command}: ${error.message}\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof CommandError || error instanceof StoreNotAvailableError) {
      stderr.write(`${error.message}\n`);
      return 1;
    }
    stderr.write(`parley ${command} failed: ${(error as Error).message ?? String(error)}\n`);
    return 1;
  }
}

/** A duration option (`15m`, `1h30m`, seconds) in seconds; UsageError naming the option otherwise. */
export function durationOption(name: string, value: string): number {
  const seconds = parseDuration(value);
  if (seconds === null) {
    throw new UsageError(`--${name} must be a positive duration such as 15m, 1h, 2d or a number of seconds, got '${value}'.`);
  }
  return seconds;
}

/** `1h`, `15m`, `1h30m`, `45s`, `2d`: a readable form of whole seconds for messages. */
export function formatDuration(seconds: number): string {
  const units: [string, number][] = [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  let rest = seconds;
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out || '0s';
}

export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}
