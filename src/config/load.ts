// Reading parley.yaml: YAML -> $VAR substitution on string values -> schema -> ParleyConfig.
// Every problem (YAML syntax, unset variables, schema) is collected and thrown as one ConfigError
// whose entries carry the path and, where the file has one, the line.

import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, Pair } from 'yaml';
import { formatPath, validateConfig } from './schema.ts';
import type { PathProblem, PathSegment } from './schema.ts';
import { substituteVariables } from './substitute.ts';
import type { Env } from './substitute.ts';
import { ConfigError } from './types.ts';
import type { ConfigProblem, ParleyConfig } from './types.ts';

export const CONFIG_FILE_NAMES = ['parley.yaml', 'parley.yml'] as const;

/** Parses and validates config text. Throws ConfigError listing every problem found. */
export function parseConfig(text: string, env: Env, file?: string): ParleyConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number) => lines.linePos(offset).line;

  if (doc.errors.length > 0) {
    // Only the parser's own message and position: its pretty form quotes source lines, which may hold secrets.
    const problems = doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return { path: '', message: `line ${line}, column ${col}: ${e.message.split('\n')[0]}` };
    });
    throw new ConfigError(problems, file ?? null);
  }

  const substitutionProblems = substituteDocument(doc, env, text, lineOf);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    // e.g. an alias bomb; the message names the limit, not file content.
    throw new ConfigError([{ path: '', message: (error as Error).message }], file ?? null);
  }
  const result = validateConfig(data);

  const located: LocatedProblem[] = [...substitutionProblems];
  if (!result.ok) {
    // A value whose variable is unset was already reported; its schema complaint would only be noise.
    const reported = new Set(located.map((p) => formatPath(p.path)));
    for (const p of result.problems) {
      if (reported.has(formatPath(p.path))) continue;
      const offset = offsetOfPath(doc, p.path);
      located.push({ ...p, line: offset === null ? null : lineOf(offset) });
    }
  }
  if (located.length > 0 || !result.ok) {
    // In file order, so the list reads top to bottom alongside the file.
    const ordered = located
      .map((p, i) => ({ p, i }))
      .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i);
    const problems: ConfigProblem[] = ordered.map(({ p }) => ({
      path: formatPath(p.path),
      message: p.line === null ? p.message : `line ${p.line}: ${p.message}`,
    }));
    throw new ConfigError(problems, file ?? null);
  }
  return result.config;
}

interface LocatedProblem extends PathProblem {
  line: number | null;
}

/** Reads and parses a config file. A missing or unreadable file is a ConfigError too. */
export async function loadConfigFile(path: string, env: Env = process.env): Promise<ParleyConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `config file not found: ${path} (copy parley.example.yaml to start one)`
        : code === 'EISDIR'
          ? `${path} is a directory, not a config file`
          : code === 'EACCES'
            ? `cannot read config file ${path}: permission denied`
            : `cannot read config file ${path}: ${code ?? 'unknown error'}`;
    throw new ConfigError([{ path: '', message }], path);
  }
  return parseConfig(text, env, path);
}

/**
 * The configuration used when there is no parley.yaml: SQLite at ./data/parley.db, and one
 * pass-through `openai/*` provider if OPENAI_API_KEY or OPENAI_BASE_URL is set. PARLEY_HOST and
 * PARLEY_PORT override the listen address.
 */
export function defaultConfigFromEnv(env: Env): ParleyConfig {
  const set = (name: string) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const providers: Record<string, unknown>[] = [];
  if (set('OPENAI_API_KEY') !== undefined || set('OPENAI_BASE_URL') !== undefined) {
    providers.push({
      model: 'openai/*',
      access_key: set('OPENAI_API_KEY') ?? null,
      base_url: set('OPENAI_BASE_URL') ?? null,
      default: true,
    });
  }
  const data = {
    listen: { host: set('PARLEY_HOST'), port: set('PARLEY_PORT') },
    state_storage: { type: 'sqlite' },
    model_providers: providers,
  };
  const result = validateConfig(data);
  if (result.ok) return result.config;
  // Name the environment variable the bad value came from, never the value.
  const source: Record<string, string> = {
    'listen.host': 'PARLEY_HOST',
    'listen.port': 'PARLEY_PORT',
    'model_providers[0].base_url': 'OPENAI_BASE_URL',
    'model_providers[0].access_key': 'OPENAI_API_KEY',
  };
  throw new ConfigError(
    result.problems.map((p) => {
      const path = formatPath(p.path);
      return { path: source[path] ?? path, message: p.message };
    }),
    'environment',
  );
}

export interface ResolvedConfig {
  config: ParleyConfig;
  /** Where the configuration came from, for the startup log. */
  source: string;
}

/**
 * Picks the configuration: an explicit path, else PARLEY_CONFIG, else parley.yaml (or
 * parley.yml) in `cwd`, else defaults from the environment.
 */
export async function resolveConfig(options: {
  configPath?: string;
  cwd: string;
  env: Env;
}): Promise<ResolvedConfig> {
  const { cwd, env } = options;
  const explicit = options.configPath ?? (env.PARLEY_CONFIG?.trim() ? env.PARLEY_CONFIG : undefined);
  if (explicit !== undefined) {
    const config = await loadConfigFile(resolve(cwd, explicit), env);
    return { config, source: explicit };
  }
  for (const name of CONFIG_FILE_NAMES) {
    const path = resolve(cwd, name);
    if (await isFile(path)) return { config: await loadConfigFile(path, env), source: name };
  }
  return { config: defaultConfigFromEnv(env), source: 'environment (no parley.yaml found)' };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Substitution over the YAML tree: string values only (keys and comments are left alone).

function substituteDocument(
  doc: Document,
  env: Env,
  text: string,
  lineOf: (offset: number) => number,
): LocatedProblem[] {
  const problems: LocatedProblem[] = [];

  const visit = (node: unknown, path: PathSegment[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) visit(pair.value, [...path, keyText(pair)]);
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => {
        visit(item, [...path, index]);
      });
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      const value = node.value;
      const result = substituteVariables(value, env);
      if (result.changed) node.value = result.value;
      for (const p of result.problems) {
        const offset = referenceOffset(node, value, p.index, p.length, text);
        problems.push({ path, line: lineOf(offset), message: p.message });
      }
    }
    // Aliases point at nodes visited where they are defined.
  };

  visit(doc.contents, []);
  return problems;
}

function keyText(pair: Pair): string {
  const key = pair.key;
  if (isScalar(key)) return String(key.value);
  return String(key);
}

/**
 * Where in the file a reference found in a scalar's value sits. For single-line scalars the start
 * of the scalar is exact; in multi-line ones, find the same occurrence of the reference's text.
 */
function referenceOffset(node: Node, value: string, index: number, length: number, text: string): number {
  const range = node.range;
  if (!range) return 0;
  const [start, end] = range;
  const source = text.slice(start, end);
  if (!source.includes('\n')) return start;
  const reference = value.slice(index, index + length);
  let occurrence = 0;
  for (let at = value.indexOf(reference); at !== -1 && at < index; at = value.indexOf(reference, at + 1))
    occurrence++;
  let found = -1;
  for (let n = 0; n <= occurrence; n++) {
    found = source.indexOf(reference, found + 1);
    if (found === -1) return start;
  }
  return start + found;
}

/**
 * Offset of the node at `path`, or of the nearest existing ancestor when the path does not exist
 * (a required key that is missing).
 */
function offsetOfPath(doc: Document, path: readonly PathSegment[]): number | null {
  let node: unknown = doc.contents;
  let offset: number | null = rangeStart(node);
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p) === String(segment));
      if (!pair) return offset;
      // The key's line for the last segment: the value may be empty, or a block on later lines.
      offset = rangeStart(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) return offset;
      offset = rangeStart(item) ?? offset;
      node = item;
    } else {
      return offset;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | null {
  const range = (node as { range?: [number, number, number] | null } | null)?.range;
  return range ? range[0] : null;
}
