// Hostile input, seeded and bounded (about 15 s): thousands of malformed and adversarial requests
// against every endpoint — wrong types, deep nesting, huge strings, invalid UTF-8, prototype-
// pollution keys, another tenant's ids, SQL and Lua metacharacters in ids, queries and metadata,
// broken content types and percent-encodings, missing and wrong keys. Every request is built to
// be invalid (an unknown model, an id that is not the caller's, a last item that cannot parse…),
// so the only acceptable answers are clean OpenAI-shaped 4xx errors: no 5xx, no crash, nothing
// sent upstream, and the store exactly as it was (compared as a full export).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ParleyConfig } from '../../src/config/types.ts';
import { type Harness, type HarnessOptions, startHarness } from '../helpers/harness.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import { assertValidError } from '../helpers/spec.ts';

const SEED = Number(process.env.PARLEY_FUZZ_SEED ?? 0x5eed);
/** Per backend: most of the time on SQLite, a shorter run on PostgreSQL and Redis. */
const BUDGET_MS = Number(process.env.PARLEY_FUZZ_MS ?? 12_000);
const SHORT_BUDGET_MS = Math.min(BUDGET_MS, 4000);
const CONCURRENCY = 8;

const KEY_A = 'fuzz-victim-key-0123456789';
const KEY_B = 'fuzz-attacker-key-0123456789';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const auth: ParleyConfig['auth'] = {
  mode: 'api_keys',
  api_keys: [
    {
      sha256: sha(KEY_A),
      tenant: 'victim',
      name: 'a',
      models: null,
      requests_per_minute: null,
      tokens_per_minute: null,
    },
    {
      sha256: sha(KEY_B),
      tenant: 'attacker',
      name: 'b',
      models: null,
      requests_per_minute: null,
      tokens_per_minute: null,
    },
  ],
};

/** mulberry32: small, fast, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const METACHARACTERS = [
  "' OR '1'='1",
  '"; DROP TABLE responses; --',
  "resp_x'); DELETE FROM conversations; --",
  "redis.call('FLUSHALL')",
  ']]..redis.call("DEL",KEYS[1])..[[',
  '%',
  '_',
  '*',
  '?',
  '[a-z]*',
  '{hash}tag',
  '\\',
  '$1',
  '..',
  '../../etc/passwd',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff\ud800',
  '\u202e',
  '😀'.repeat(3),
  '\r\nx-injected: 1',
  '<script>alert(1)</script>',
  '$' + '{jndi:ldap://x}',
  'NaN',
  '-0',
  '1e400',
  'null',
  'undefined',
  '__proto__',
  'constructor',
  'prototype',
];

const POLLUTION_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '__defineGetter__',
];

/** Any value as text (a value with a polluted toString cannot be String()ed). */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return 'x';
  }
}

/** encodeURIComponent, except that a lone surrogate goes out as its (invalid) UTF-8 bytes. */
function encode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return [...text].map((c) => (/[\ud800-\udfff]/.test(c) ? '%ED%A0%80' : encodeURIComponent(c))).join('');
  }
}

interface Case {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array<ArrayBuffer> | string;
  label: string;
}

class Fuzzer {
  readonly #r: () => number;
  readonly victim: { responses: string[]; conversations: string[]; items: string[] };

  constructor(seed: number, victim: Fuzzer['victim']) {
    this.#r = prng(seed);
    this.victim = victim;
  }

  int(n: number): number {
    return Math.floor(this.#r() * n);
  }
  chance(p: number): boolean {
    return this.#r() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)];
  }

  /** An id: the victim's, a metacharacter soup, a huge one, or an unknown well-formed one. */
  id(prefix: string): string {
    switch (this.int(6)) {
      case 0:
        return this.pick(
          prefix === 'conv'
            ? this.victim.conversations
            : prefix === 'msg'
              ? this.victim.items
              : this.victim.responses,
        );
      case 1:
        return this.pick(METACHARACTERS);
      case 2:
        return `${prefix}_${this.pick(METACHARACTERS)}`;
      case 3:
        return 'x'.repeat(1 + this.int(20_000));
      case 4:
        return `${prefix}_${'0'.repeat(48)}`;
      default:
        return this.string(40);
    }
  }

  /** A path segment as a client might send it: encoded, raw, or with broken percent-escapes. */
  segment(id: string): string {
    switch (this.int(4)) {
      case 0:
        return encode(id).slice(0, 8000);
      case 1:
        return this.pick(['%ZZ', '%E0%A4%A', '%00', '%2F..%2F', '%C0%AF', '%FF%FE', '%u0041']);
      default:
        return encode(id).slice(0, 8000);
    }
  }

  string(max: number): string {
    const n = this.int(max);
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = this.int(10);
      s +=
        c < 6
          ? String.fromCharCode(32 + this.int(95))
          : c < 8
            ? String.fromCharCode(this.int(0x10000))
            : this.pick(METACHARACTERS);
    }
    return s;
  }

  /** Any JSON value, hostile more often than not. */
  value(depth = 0): unknown {
    const kind = this.int(depth > 3 ? 7 : 11);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, Number.MIN_VALUE]);
      case 3:
        return this.string(30);
      case 4:
        return this.pick(METACHARACTERS);
      case 5:
        return 'y'.repeat(this.int(this.chance(0.1) ? 300_000 : 2000));
      case 6:
        return [];
      case 7:
        return Array.from({ length: this.int(6) }, () => this.value(depth + 1));
      case 8:
      case 9: {
        const out: Record<string, unknown> = {};
        for (let i = this.int(6); i > 0; i--) {
          Object.defineProperty(out, this.chance(0.3) ? this.pick(POLLUTION_KEYS) : this.string(12), {
            value: this.value(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return out;
      }
      default:
        // (JSON.stringify gives up near 4,000 levels: deeper bodies are written as text, see deepBody.)
        return this.nested(this.chance(0.5) ? 20 + this.int(80) : 100 + this.int(2500));
    }
  }

  nested(depth: number): unknown {
    let v: unknown = this.chance(0.5) ? 'leaf' : {};
    for (let i = 0; i < depth; i++) v = this.chance(0.5) ? [v] : { a: v };
    return v;
  }

  /** An item, mostly plausible in shape with hostile values. */
  item(): unknown {
    switch (this.int(6)) {
      case 0:
        return {
          type: 'message',
          role: this.pick(['user', 'assistant', 'system', 'developer', 'tool', this.string(8)]),
          content: this.value(),
        };
      case 1:
        return {
          type: 'message',
          role: 'user',
          content: [
            {
              type: this.pick(['input_text', 'input_image', 'input_file', 'output_text', this.string(6)]),
              text: this.value(),
              image_url: this.value(),
            },
          ],
        };
      case 2:
        return { type: 'function_call', call_id: this.value(), name: this.value(), arguments: this.value() };
      case 3:
        return { type: 'function_call_output', call_id: this.id('call'), output: this.value() };
      case 4:
        return {
          type: this.pick(['reasoning', 'item_reference', 'compaction', this.string(10)]),
          id: this.id('rs'),
          summary: this.value(),
          encrypted_content: this.value(),
        };
      default:
        return this.value();
    }
  }

  metadata(): unknown {
    if (this.chance(0.3)) return this.value();
    const out: Record<string, unknown> = {};
    for (let i = this.int(20); i > 0; i--) {
      Object.defineProperty(
        out,
        this.chance(0.3) ? this.pick(POLLUTION_KEYS) : this.pick([...METACHARACTERS, this.string(80)]),
        {
          value: this.chance(0.8) ? this.pick([...METACHARACTERS, this.string(600)]) : this.value(),
          enumerable: true,
          writable: true,
          configurable: true,
        },
      );
    }
    return out;
  }

  /** Some of a create-response body's fields with hostile values. */
  responseFields(): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    const fields: [string, () => unknown][] = [
      [
        'input',
        () => (this.chance(0.5) ? Array.from({ length: this.int(8) }, () => this.item()) : this.value()),
      ],
      ['instructions', () => this.value()],
      ['metadata', () => this.metadata()],
      [
        'tools',
        () => [{ type: 'function', name: this.value(), parameters: this.value(), strict: this.value() }],
      ],
      ['tool_choice', () => this.value()],
      ['temperature', () => this.value()],
      ['top_p', () => this.value()],
      ['max_output_tokens', () => this.value()],
      ['stream', () => this.pick([true, false, this.value()])],
      ['store', () => this.value()],
      ['background', () => this.pick([true, this.value()])],
      ['include', () => this.value()],
      ['text', () => ({ format: this.value() })],
      ['truncation', () => this.value()],
      ['user', () => this.value()],
      ['reasoning', () => this.value()],
      ['context_management', () => this.value()],
      [this.pick(POLLUTION_KEYS), () => this.value()],
      [this.string(10), () => this.value()],
    ];
    for (const [name, make] of fields) if (this.chance(0.35)) body[name] = make();
    return body;
  }

  /** Serialises a body, sometimes as bytes no JSON parser should accept or as invalid UTF-8. */
  encode(body: unknown, allowEmpty = true): Uint8Array<ArrayBuffer> | string {
    const json = JSON.stringify(body) ?? 'null';
    switch (this.int(12)) {
      case 0: {
        // Invalid UTF-8 inside a string.
        const bytes = Buffer.from(json);
        const at = json.indexOf('"') + 1;
        const bad = Buffer.from(
          this.pick([
            [0xff],
            [0xfe, 0xff],
            [0x80],
            [0xc0, 0xaf],
            [0xed, 0xa0, 0x80],
            [0xf8, 0x88, 0x80, 0x80, 0x80],
          ]),
        );
        return new Uint8Array(
          at > 0
            ? Buffer.concat([bytes.subarray(0, at), bad, bytes.subarray(at)])
            : Buffer.concat([bad, bytes]),
        );
      }
      case 1:
        return json.slice(0, 1 + this.int(json.length));
      case 2:
        return json.replace('{', '{"__proto__":{"polluted":true},');
      case 3:
        return json.replace('{', '{"constructor":{"prototype":{"polluted":true}},');
      case 4:
        // (No body at all is a valid conversations.create(): callers that must fail say so.)
        return this.pick([
          ...(allowEmpty ? ['', ' ', 'null'] : []),
          '[]',
          '"string"',
          '1e400',
          'NaN',
          '{',
          '{"a":}',
          '\u0000',
          '{"a":"\\ud800"}',
          '[[[[[[[[[[',
        ]);
      default:
        return json;
    }
  }

  contentType(): Record<string, string> {
    const type = this.int(10);
    if (type === 0) return {};
    if (type === 1)
      return {
        'content-type': this.pick([
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/json; charset=utf-16',
        ]),
      };
    return { 'content-type': 'application/json' };
  }

  /** Who the request claims to be: the attacker mostly, nobody, or someone wrong. */
  auth(victimAllowed: boolean): Record<string, string> {
    // Header values are bytes: what is not Latin-1 cannot be sent as it is.
    const headers = this.#auth(victimAllowed);
    for (const [k, v] of Object.entries(headers)) headers[k] = v.replace(/[^\u0020-\u00ff]/g, '?');
    return headers;
  }

  #auth(victimAllowed: boolean): Record<string, string> {
    const who = this.int(10);
    if (who < 6) return { authorization: `Bearer ${KEY_B}` };
    if (who === 6 && victimAllowed) return { authorization: `Bearer ${KEY_A}` };
    if (who === 7) return {};
    if (who === 8)
      return { 'x-api-key': this.pick([KEY_A.slice(0, -1), this.pick(METACHARACTERS), 'x'.repeat(5000)]) };
    return {
      authorization: this.pick([
        'Bearer',
        `Bearer ${this.string(30)}`,
        `Basic ${KEY_A}`,
        `Bearer  ${KEY_A} x`,
        `bearer\t${KEY_B}x`,
      ]),
    };
  }

  query(): string {
    const params: string[] = [];
    for (let i = this.int(4); i > 0; i--) {
      const key = this.pick([
        'limit',
        'order',
        'after',
        'stream',
        'starting_after',
        'include',
        'include[]',
        'user',
        'created_after',
        'metadata[k]',
        'metadata[__proto__]',
        this.string(5),
      ]);
      params.push(
        `${encode(key)}=${this.chance(0.2) ? this.pick(['%ZZ', '%00', '%']) : encode(this.pick([...METACHARACTERS, asText(this.value()), this.id('msg')]).slice(0, 3000))}`,
      );
    }
    return params.length ? `?${params.join('&')}` : '';
  }

  next(): Case {
    const unknownModel = () =>
      this.pick(['gpt-5-nonexistent', this.pick(METACHARACTERS), 'openai/../../x', this.string(20) || 'zz']);
    const n = this.int(19);
    switch (n) {
      case 0:
      case 1:
      case 2: {
        // Create a response: an unknown model, or a history that is not the caller's.
        const body = this.responseFields();
        const guard = this.int(3);
        if (guard === 0) body.model = unknownModel();
        else {
          body.model = 'gpt-4o-mini';
          if (guard === 1) body.previous_response_id = this.id('resp');
          else body.conversation = this.chance(0.5) ? this.id('conv') : { id: this.id('conv') };
        }
        const victim = guard === 0;
        return {
          method: 'POST',
          path: '/v1/responses',
          headers: { ...this.auth(victim), ...this.contentType() },
          body: this.encode(body),
          label: `create/${guard}`,
        };
      }
      case 3: {
        const body = { ...this.responseFields(), model: unknownModel() };
        return {
          method: 'POST',
          path: this.pick(['/v1/responses/input_tokens', '/v1/responses/compact']),
          headers: { ...this.auth(true), ...this.contentType() },
          body: this.encode(body),
          label: 'tokens/compact',
        };
      }
      case 4: {
        const body = {
          model: unknownModel(),
          messages: this.chance(0.5)
            ? Array.from({ length: this.int(5) }, () => ({ role: this.value(), content: this.value() }))
            : this.value(),
          stream: this.value(),
          tools: this.value(),
        };
        return {
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { ...this.auth(true), ...this.contentType() },
          body: this.encode(body),
          label: 'chat',
        };
      }
      case 5:
      case 6: {
        const id = this.segment(this.id('resp'));
        const path = this.pick([
          `/v1/responses/${id}`,
          `/v1/responses/${id}/input_items`,
          `/v1/responses/${id}/cancel`,
        ]);
        const method = path.endsWith('/cancel') ? 'POST' : this.pick(['GET', 'GET', 'DELETE']);
        return { method, path: path + this.query(), headers: this.auth(false), label: `response ${method}` };
      }
      case 7: {
        // Create a conversation whose last item cannot parse.
        const body: Record<string, unknown> = {
          items: [
            ...Array.from({ length: this.int(5) }, () => this.item()),
            { type: 'message', role: 'nobody', content: 1 },
          ],
        };
        if (this.chance(0.7)) body.metadata = this.metadata();
        if (this.chance(0.3)) body.user = this.value();
        return {
          method: 'POST',
          path: '/v1/conversations',
          headers: { ...this.auth(true), ...this.contentType() },
          body: this.encode(body, false),
          label: 'conversation create',
        };
      }
      case 8:
        return {
          method: 'GET',
          path: `/v1/conversations${this.query()}`,
          headers: this.chance(0.5) ? {} : { authorization: 'Bearer nope-nope-nope-nope' },
          label: 'conversation list unauthenticated',
        };
      case 9:
      case 10:
      case 11: {
        const conv = this.segment(this.id('conv'));
        const item = this.segment(this.id('msg'));
        const [method, path] = this.pick([
          ['GET', `/v1/conversations/${conv}`],
          ['POST', `/v1/conversations/${conv}`],
          ['PATCH', `/v1/conversations/${conv}`],
          ['DELETE', `/v1/conversations/${conv}`],
          ['GET', `/v1/conversations/${conv}/details`],
          ['POST', `/v1/conversations/${conv}/fork`],
          ['GET', `/v1/conversations/${conv}/items`],
          ['POST', `/v1/conversations/${conv}/items`],
          ['GET', `/v1/conversations/${conv}/items/${item}`],
          ['DELETE', `/v1/conversations/${conv}/items/${item}`],
        ] as const);
        const hasBody = method === 'POST' || method === 'PATCH';
        const body = {
          metadata: this.metadata(),
          items: Array.from({ length: this.int(4) }, () => this.item()),
          item_id: this.value(),
        };
        return {
          method,
          path: path + this.query(),
          headers: { ...this.auth(false), ...(hasBody ? this.contentType() : {}) },
          ...(hasBody ? { body: this.encode(body) } : {}),
          label: `conversation ${method}`,
        };
      }
      case 12:
        return {
          method: 'DELETE',
          path: `/v1/users/${this.segment(this.string(30) || 'u')}`,
          headers: this.chance(0.5) ? {} : { 'x-api-key': 'wrong-wrong-wrong-wrong' },
          label: 'users unauthenticated',
        };
      case 13: {
        // A body far beyond the limit.
        const body = `{"model":"gpt-4o-mini","input":"${'z'.repeat(1024 * 1024 + this.int(100_000))}"}`;
        return {
          method: 'POST',
          path: this.pick(['/v1/responses', '/v1/conversations', '/v1/chat/completions']),
          headers: { ...this.auth(true), 'content-type': 'application/json' },
          body,
          label: 'oversized',
        };
      }
      case 14: {
        // Nesting far beyond the limit (10,000 levels and more), in any field, with pollution keys inside.
        const depth = this.pick([200, 10_000, 10_000 + this.int(200_000)]);
        const field = this.pick([
          'metadata',
          'tools',
          'input',
          'text',
          'items',
          'messages',
          '__proto__',
          'x',
        ]);
        const open = this.chance(0.5) ? '['.repeat(depth) : '{"__proto__":'.repeat(depth);
        const close = open.startsWith('[') ? ']'.repeat(depth) : '}'.repeat(depth);
        const body = `{"model":"${unknownModel().replace(/["\\]/g, '')}","input":"x","${field}":${open}1${close}}`;
        return {
          method: 'POST',
          path: this.pick([
            '/v1/responses',
            '/v1/conversations',
            '/v1/chat/completions',
            '/v1/responses/input_tokens',
          ]),
          headers: { ...this.auth(true), 'content-type': 'application/json' },
          body,
          label: 'deep',
        };
      }
      case 15: {
        const count = 10_001 + this.int(100);
        const body = { model: unknownModel(), input: Array.from({ length: count }, () => 1) };
        return {
          method: 'POST',
          path: '/v1/responses',
          headers: { ...this.auth(true), 'content-type': 'application/json' },
          body: JSON.stringify(body),
          label: 'many items',
        };
      }
      case 16:
        return {
          method: this.pick(['PUT', 'OPTIONS', 'GET', 'POST']),
          path: this.pick([
            '/v1/nope',
            `/v1/${this.segment(this.string(10))}`,
            '/v1/responses/a/b/c',
            '/v2/responses',
          ]),
          headers: this.auth(false),
          label: 'unknown route',
        };
      case 17: {
        // The victim's own key, with an unknown model and every hostile body.
        const body = {
          ...this.responseFields(),
          model: unknownModel(),
          previous_response_id: this.pick(this.victim.responses),
        };
        return {
          method: 'POST',
          path: '/v1/responses',
          headers: { authorization: `Bearer ${KEY_A}`, ...this.contentType() },
          body: this.encode(body),
          label: 'victim unknown model',
        };
      }
      default: {
        const id = this.segment(this.id('resp'));
        return {
          method: 'GET',
          path: `/v1/responses/${id}?stream=true&starting_after=${encode(asText(this.value()))}`,
          headers: this.auth(false),
          label: 'stream retrieve',
        };
      }
    }
  }
}

function fuzzSuite(
  name: string,
  storage: () => Promise<HarnessOptions['store']>,
  budgetMs: number,
  cleanup: () => Promise<void> = async () => {},
) {
  describe(`hostile input on ${name}`, () => {
    let h: Harness;
    const victim = { responses: [] as string[], conversations: [] as string[], items: [] as string[] };
    // About 500 requests a second get through on a slow machine.
    const minRequests = Math.floor(budgetMs / 1000) * 150;

    before(async () => {
      h = await startHarness({ store: await storage(), config: { auth } });
      const a = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
      h.upstream.enqueue(
        { kind: 'text', text: 'one' },
        { kind: 'text', text: 'two' },
        { kind: 'text', text: 'three' },
      );
      const r1 = await a.responses.create({ model: 'gpt-4o-mini', input: 'first', metadata: { k: 'v' } });
      const r2 = await a.responses.create({
        model: 'gpt-4o-mini',
        input: 'second',
        previous_response_id: r1.id,
      });
      const c = await a.conversations.create({
        items: [{ type: 'message', role: 'user', content: 'hi' }],
        metadata: { m: 'x' },
      });
      await a.responses.create({ model: 'gpt-4o-mini', input: 'in conversation', conversation: c.id });
      victim.responses.push(r1.id, r2.id);
      victim.conversations.push(c.id);
      for (const item of (await a.conversations.items.list(c.id)).data) victim.items.push(item.id as string);
    });
    after(async () => {
      await h?.close();
      await cleanup();
    });

    async function snapshot(): Promise<string> {
      const records: unknown[] = [];
      for await (const record of h.gateway.store!.exportRecords({})) records.push(record);
      return JSON.stringify(records);
    }

    it(`answers thousands of adversarial requests with clean 4xx only, leaving the store unchanged (seed ${SEED})`, async () => {
      const before = await snapshot();
      const upstreamBefore = h.upstream.requests.length;
      const fuzzer = new Fuzzer(SEED, victim);
      const deadline = Date.now() + budgetMs;
      const statuses = new Map<number, number>();
      const failures: string[] = [];
      let sent = 0;

      const worker = async () => {
        while (Date.now() < deadline && failures.length < 5) {
          const c = fuzzer.next();
          sent++;
          let res: Response;
          try {
            res = await fetch(`${h.url}${c.path}`, {
              method: c.method,
              headers: c.headers,
              ...(c.body === undefined ? {} : { body: c.body }),
            });
          } catch (error) {
            failures.push(
              `${c.label} ${c.method} ${c.path.slice(0, 120)}: request failed: ${(error as Error).message}`,
            );
            continue;
          }
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status < 400 || res.status >= 500) {
            if (process.env.PARLEY_FUZZ_DUMP)
              writeFileSync(`${process.env.PARLEY_FUZZ_DUMP}.${failures.length}`, c.body ?? '');
            failures.push(
              `${c.label} ${c.method} ${c.path.slice(0, 120)} -> ${res.status} ${text.slice(0, 300)}`,
            );
            continue;
          }
          try {
            assertValidError(JSON.parse(text));
          } catch (error) {
            failures.push(
              `${c.label} ${c.method} ${c.path.slice(0, 120)} -> ${res.status} not OpenAI-shaped: ${text.slice(0, 300)} (${(error as Error).message.slice(0, 200)})`,
            );
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));

      assert.deepEqual(failures, [], `seed ${SEED}; statuses ${JSON.stringify([...statuses])}`);
      assert.ok(sent >= minRequests, `only ${sent} requests in ${budgetMs} ms`);
      // Alive, unchanged, and nothing reached the model.
      assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
      assert.equal(h.upstream.requests.length, upstreamBefore, 'no hostile request reached the upstream');
      assert.equal(await snapshot(), before, 'the store is exactly as it was');
      assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
      // The victim's data still reads back.
      const a = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
      assert.equal((await a.responses.retrieve(victim.responses[1])).output_text, 'two');
      assert.ok(statuses.size >= 5, `a variety of answers: ${JSON.stringify([...statuses])}`);
    });
  });
}

fuzzSuite('sqlite', async () => 'sqlite', BUDGET_MS);

let postgres: PostgresServer | null = null;
fuzzSuite(
  'postgres',
  async () => {
    postgres = await startPostgres();
    const database = await postgres.createDatabase('fuzz');
    return {
      type: 'postgres',
      connection_string: postgres.url({ database }),
      pool_size: 4,
      ttl_seconds: null,
    };
  },
  SHORT_BUDGET_MS,
  async () => {
    await postgres?.stop();
  },
);

let redis: RedisServer | null = null;
fuzzSuite(
  'redis',
  async () => {
    redis = await startRedisServer();
    return { type: 'redis', connection_string: redis.url, ttl_seconds: null };
  },
  SHORT_BUDGET_MS,
  async () => {
    await redis?.stop();
  },
);
