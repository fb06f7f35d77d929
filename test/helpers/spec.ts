// Validators for the Open Responses schema (../shared/spec/openresponses.openapi.json, OpenAPI 3.1,
// i.e. JSON Schema 2020-12). Tests call these on whatever the gateway sends: response objects,
// stream events and error bodies.

import { AssertionError } from 'node:assert';
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const SPEC_URL = new URL('../../../shared/spec/openresponses.openapi.json', import.meta.url);
const SPEC_ID = 'openresponses';

interface Validators {
  response: ValidateFunction;
  item: ValidateFunction;
  events: Map<string, { name: string; validate: ValidateFunction }>;
  error: ValidateFunction;
  compact: ValidateFunction;
}

let validators: Validators | undefined;

// Compiled on first use, so importing this module costs nothing.
function load(): Validators {
  if (validators) return validators;
  // biome-ignore lint/suspicious/noExplicitAny: raw OpenAPI document
  const spec: any = JSON.parse(readFileSync(SPEC_URL, 'utf8'));
  const schemas = spec.components.schemas;

  // Spec quirk: `JsonSchemaResponseFormat.schema` is `{"type": "null"}`, an artifact of the generator
  // that produced the spec. OpenAI echoes the request's JSON schema object there, and so does Parley
  // on purpose. This is the only subschema patched, and only in this in-memory copy.
  schemas.JsonSchemaResponseFormat.properties.schema = {
    anyOf: [{ type: 'object' }, { type: 'null' }],
  };

  // Ajv's `discriminator` option needs every `discriminator` to sit beside a `oneOf`. Five sit beside
  // a lone `$ref` (e.g. `Tool`), where OpenAPI gives them no validation meaning; dropping those
  // annotations changes nothing that validates, and lets Ajv report "tag value must be in oneOf" /
  // the errors of the one matching branch instead of every branch's errors.
  dropLoneDiscriminators(spec);

  const ajv = new Ajv2020({ strict: false, discriminator: true, allErrors: true });
  addFormatsModule.default(ajv);
  ajv.addSchema({ $id: SPEC_ID, components: spec.components });

  const ref = (name: string): ValidateFunction => {
    const validate = ajv.getSchema(`${SPEC_ID}#/components/schemas/${name}`);
    if (!validate) throw new Error(`schema ${name} not found in the Open Responses spec`);
    return validate;
  };

  const events = new Map<string, { name: string; validate: ValidateFunction }>();
  const streamSchema = spec.paths['/responses'].post.responses['200'].content['text/event-stream'].schema;
  for (const branch of streamSchema.oneOf as { $ref: string }[]) {
    const name = branch.$ref.split('/').pop()!;
    const types: string[] = schemas[name].properties.type.enum;
    const validate = ref(name);
    for (const type of types) events.set(type, { name, validate });
  }

  const error = ajv.compile({
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['message', 'type', 'param', 'code'],
        properties: {
          message: { type: 'string' },
          type: { type: 'string' },
          param: { type: ['string', 'null'] },
          code: { type: ['string', 'null'] },
        },
      },
    },
  });

  validators = { response: ref('ResponseResource'), item: ref('ItemField'), events, error, compact: ref('CompactResource') };
  return validators;
}

function dropLoneDiscriminators(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) dropLoneDiscriminators(item);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  if ('discriminator' in obj && !('oneOf' in obj)) delete obj.discriminator;
  for (const value of Object.values(obj)) dropLoneDiscriminators(value);
}

/** Asserts `obj` is a complete Open Responses `ResponseResource`. */
export function assertValidResponse(obj: unknown): void {
  const { response } = load();
  if (!response(obj)) fail('ResponseResource', obj, response.errors);
}

/** Asserts `item` is an Open Responses `ItemField`: an output, input or conversation item as returned. */
export function assertValidItem(item: unknown): void {
  const validate = load().item;
  if (!validate(item)) fail('ItemField', item, validate.errors);
}

/** Asserts `ev` is one of the streaming events the spec lists, validated against its own schema. */
export function assertValidStreamEvent(ev: unknown): void {
  const { events } = load();
  const type = (ev as { type?: unknown } | null)?.type;
  const entry = typeof type === 'string' ? events.get(type) : undefined;
  if (!entry) {
    throw new AssertionError({
      message:
        `Unknown Open Responses stream event type ${JSON.stringify(type)}; known: ${[...events.keys()].join(', ')}\n` +
        `  event: ${snippet(ev)}`,
      actual: type,
      expected: [...events.keys()],
      operator: 'assertValidStreamEvent',
    });
  }
  if (!entry.validate(ev)) fail(entry.name, ev, entry.validate.errors);
}

/** Asserts a POST /responses/compact answer is an Open Responses `CompactResource`. */
export function assertValidCompactResource(obj: unknown): void {
  const { compact } = load();
  if (!compact(obj)) fail('CompactResource', obj, compact.errors);
}

/** Asserts an OpenAI-shaped error body: `{error: {message, type, param, code}}`. */
export function assertValidError(body: unknown): void {
  const { error } = load();
  if (!error(body)) fail('error body {error:{message,type,param,code}}', body, error.errors);
}

/** The stream event types the spec defines. */
export function streamEventTypes(): string[] {
  return [...load().events.keys()];
}

function fail(schemaName: string, value: unknown, errors: ErrorObject[] | null | undefined): never {
  const lines: string[] = [];
  const seen = new Set<string>();
  const paths: string[] = [];
  // One line per object for its missing properties, rather than one per property.
  const missing = new Map<string, string[]>();
  for (const e of errors ?? []) {
    if (e.keyword === 'required') {
      const props = missing.get(e.instancePath) ?? [];
      props.push(String((e.params as { missingProperty: string }).missingProperty));
      missing.set(e.instancePath, props);
    }
  }
  for (const e of errors ?? []) {
    let line: string;
    if (e.keyword === 'required') {
      const props = missing.get(e.instancePath)!;
      line =
        props.length === 1
          ? `  ${e.instancePath || '(root)'}: must have required property '${props[0]}'`
          : `  ${e.instancePath || '(root)'}: must have required properties ${props.map((p) => `'${p}'`).join(', ')}`;
    } else {
      line = `  ${e.instancePath || '(root)'}: ${e.message ?? e.keyword}${detail(e)}`;
    }
    if (seen.has(line)) continue;
    seen.add(line);
    lines.push(line);
    if (!paths.includes(e.instancePath)) paths.push(e.instancePath);
  }
  const snippets = paths.slice(0, 3).map((p) => `  at ${p || '(root)'}: ${snippet(valueAt(value, p))}`);
  throw new AssertionError({
    message: `Does not match Open Responses ${schemaName}:\n${lines.join('\n')}\n${snippets.join('\n')}`,
    actual: value,
    operator: 'assertValid',
  });
}

function detail(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'enum':
      return ` ${JSON.stringify(p.allowedValues)}`;
    case 'const':
      return ` ${JSON.stringify(p.allowedValue)}`;
    case 'additionalProperties':
      return ` '${String(p.additionalProperty)}'`;
    case 'discriminator':
      return p.tagValue === undefined ? '' : ` (got ${JSON.stringify(p.tagValue)})`;
    default:
      return '';
  }
}

function valueAt(root: unknown, pointer: string): unknown {
  if (pointer === '') return root;
  let cur: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function snippet(value: unknown, max = 400): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? text.slice(0, max) + `… (${text.length} chars)` : text;
}
