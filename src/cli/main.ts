// `parley <command>`: serve (the default for `npm start`) and validate. Returns the exit code
// instead of exiting, so tests can drive it in-process.

import { parseArgs } from 'node:util';
import { resolveConfig } from '../config/load.ts';
import { ConfigError, type ParleyConfig } from '../config/types.ts';
import { createGateway } from '../gateway.ts';
import { assertListenAllowed, describeAuth } from '../ops/operations.ts';
import { createModelRegistry } from '../providers/registry.ts';
import { StoreNotAvailableError } from '../store/index.ts';
import { chatCommand } from './chat.ts';
import { exportCommand } from './export.ts';
import { importCommand } from './import.ts';
import { migrateCommand } from './migrate.ts';
import { pruneCommand } from './prune.ts';

const USAGE = `Usage: parley <command> [options]

Commands:
  serve     Start the gateway (default)
  validate  Check a config file and print every problem with its path
  migrate   Create or upgrade the state storage schema (PostgreSQL, SQLite) and exit
  prune     Delete expired records and mark turns of stopped instances failed, then exit
              [--dry-run] [--stale-after DURATION]
  export    Write the stored state as JSON Lines to stdout
              [--conversation ID] [--since DATE|7d] [--tenant T]
  import    Read a \`parley export\` file (or - for stdin) into the configured store
              FILE
  chat      Chat in the terminal on a conversation, against a gateway or in-process
              [--model M] [--conversation ID] [--url URL | --config FILE]

Options:
  --config FILE   Config file (default: ./parley.yaml, else settings from the environment)
  --port N        Listen on this port instead of the configured one
  --host ADDR     Listen on this address instead of the configured one
  -h, --help      Show this help
`;

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'chat') return chatCommand(argv.slice(1)); // its own options (chat.ts)
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { command, values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  switch (command) {
    case 'serve':
      return serve(values);
    case 'validate':
      return validate(values);
    case 'migrate':
      return migrateCommand(values.config ? { configPath: values.config } : {});
    case 'prune':
      return pruneCommand({ ...configOption(values), dryRun: values['dry-run'] === true, ...defined('staleAfter', values['stale-after']) });
    case 'export':
      return exportCommand({
        ...configOption(values),
        ...defined('conversation', values.conversation),
        ...defined('since', values.since),
        ...defined('tenant', values.tenant),
      });
    case 'import':
      return importCommand({ ...configOption(values), ...defined('file', parsed.args[0]) });
    default:
      process.stderr.write(`Unknown command '${command}'.\n\n${USAGE}`);
      return 2;
  }
}

function parse(argv: string[]) {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      // prune, export
      'dry-run': { type: 'boolean' },
      'stale-after': { type: 'string' },
      conversation: { type: 'string' },
      since: { type: 'string' },
      tenant: { type: 'string' },
    },
  });
  return { command: positionals[0] ?? 'serve', args: positionals.slice(1), values };
}

const configOption = (values: Values) => (values.config ? { configPath: values.config } : {});
const defined = <K extends string>(key: K, value: string | undefined) =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };

type Values = ReturnType<typeof parse>['values'];

async function load(values: Values) {
  return resolveConfig({ ...(values.config ? { configPath: values.config } : {}), cwd: process.cwd(), env: process.env });
}

async function validate(values: Values): Promise<number> {
  try {
    const { config, source } = await load(values);
    createModelRegistry(config.model_providers); // provider types must be available too
    process.stdout.write(`${source}: configuration is valid (${config.model_providers.length} model(s), state: ${describeState(config)}).\n`);
    return 0;
  } catch (error) {
    return reportStartupError(error);
  }
}

async function serve(values: Values): Promise<number> {
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`--port must be a port number (0-65535), got '${values.port}'.\n`);
      return 2;
    }
  }
  try {
    const { config, source } = await load(values);
    // Before anything is opened: no auth section means loopback only.
    assertListenAllowed(config.auth, values.host ?? config.listen.host);
    const gateway = await createGateway(config, { logger: { level: process.env.PARLEY_LOG_LEVEL ?? 'info' } });
    const url = await gateway.listen({ ...(port === undefined ? {} : { port }), ...(values.host ? { host: values.host } : {}) });
    printBanner(url, source, config, gateway.engine.models.list());
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          // A second signal: stop waiting for in-flight requests.
          process.stderr.write(`${signal} received again: closing now.\n`);
          gateway.close().then(resolve, resolve);
          return;
        }
        stopping = true;
        const seconds = Math.round(gateway.ops.limits.shutdown_timeout_ms / 1000);
        process.stderr.write(
          `\n${signal} received: accepting no new connections; letting ${gateway.ops.drain.requests} request(s) and ${gateway.ops.drain.background} background response(s) finish (up to ${seconds}s), then closing the store…\n`,
        );
        gateway.shutdown().then(
          ({ stopped }) => {
            if (stopped > 0) process.stderr.write(`${stopped} response(s) still running at the deadline were stored as incomplete.\n`);
            resolve();
          },
          (error) => {
            process.stderr.write(`error while closing: ${(error as Error).message}\n`);
            resolve();
          },
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
    return 0;
  } catch (error) {
    return reportStartupError(error);
  }
}

function describeState(config: ParleyConfig): string {
  const s = config.state_storage;
  if (!s) return 'none (stateless: previous_response_id is rejected)';
  const ttl = s.ttl_seconds === null ? '' : `, responses expire after ${s.ttl_seconds}s`;
  switch (s.type) {
    case 'sqlite':
      return `sqlite at ${s.path}${ttl}`;
    case 'memory':
      return `memory (at most ${s.max_entries} responses, lost on restart${ttl})`;
    default:
      // Connection strings may hold passwords: name the backend only.
      return `${s.type}${ttl}`;
  }
}

function printBanner(
  url: string,
  source: string,
  config: ParleyConfig,
  models: ReturnType<ReturnType<typeof createModelRegistry>['list']>,
): void {
  const lines = [
    `Parley listening on ${url}`,
    `  config: ${source}`,
    `  state:  ${describeState(config)}`,
    `  auth:   ${describeAuth(config.auth, new URL(url).hostname)}`,
  ];
  if (models.length === 0) {
    lines.push('  models: none configured — add model_providers to parley.yaml or set OPENAI_API_KEY / OPENAI_BASE_URL');
  } else {
    lines.push('  models:');
    for (const m of models) {
      const what = m.wildcard ? `any model id, e.g. ${m.provider}/<model>` : m.route;
      lines.push(`    ${m.id}${m.id !== m.route ? ` -> ${what}` : m.wildcard ? ` (${what})` : ''}${m.isDefault ? ' [default]' : ''}  via ${m.endpoint}`);
    }
  }
  lines.push(`  try:    curl ${url}/v1/responses -H 'content-type: application/json' -d '{"model":"${models[0]?.wildcard ? 'gpt-4o-mini' : (models[0]?.id ?? 'MODEL')}","input":"Hello"}'`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function reportStartupError(error: unknown): number {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
  if (error instanceof StoreNotAvailableError) {
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
  const e = error as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE') {
    process.stderr.write(`The port is already in use (${e.message}). Stop the other process or pass --port.\n`);
    return 1;
  }
  process.stderr.write(`Parley could not start: ${e.message ?? String(error)}\n`);
  return 1;
}
