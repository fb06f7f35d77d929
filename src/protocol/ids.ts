import { randomBytes } from 'node:crypto';

// Ids look like OpenAI's (`resp_` + 48 hex chars) so clients that sniff prefixes keep working.
// Random bytes come from a pooled buffer: one syscall per 512 ids instead of one per id.
const POOL_IDS = 512;
const ID_BYTES = 24;
let pool = Buffer.alloc(0);
let offset = 0;

function randomHex(): string {
  if (offset >= pool.length) {
    pool = randomBytes(POOL_IDS * ID_BYTES);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return hex;
}

export type IdPrefix = 'resp' | 'msg' | 'fc' | 'fco' | 'rs' | 'conv' | 'call' | 'cmp';

/**
 * Built in a buffer rather than by concatenation: V8 keeps `a + b` as a two-piece string for as
 * long as it lives (~48 bytes more per id), and ids are kept for a long time, in stores and the
 * context cache.
 */
export function newId(prefix: IdPrefix): string {
  return Buffer.from(`${prefix}_${randomHex()}`, 'latin1').toString('latin1');
}
