// Human-friendly durations (`30d`, `12h`, `1h30m`) and byte sizes (`10mb`) for config values.

const SECONDS_PER_UNIT: Record<string, number> = {
  s: 1,
  sec: 1,
  secs: 1,
  second: 1,
  seconds: 1,
  m: 60,
  min: 60,
  mins: 60,
  minute: 60,
  minutes: 60,
  h: 3600,
  hr: 3600,
  hrs: 3600,
  hour: 3600,
  hours: 3600,
  d: 86_400,
  day: 86_400,
  days: 86_400,
  w: 604_800,
  wk: 604_800,
  week: 604_800,
  weeks: 604_800,
};

const NUMBER = /^\d+(?:\.\d+)?$/;
const DURATION_PART = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/y;

/**
 * Parses a duration into whole seconds (rounded). A bare number, or a string of digits, is
 * seconds. Returns null when the input is not a duration or is not positive.
 */
export function parseDuration(input: string | number): number | null {
  if (typeof input === 'number') {
    return Number.isFinite(input) && input > 0 ? positiveRounded(input) : null;
  }
  const text = input.trim().toLowerCase();
  if (text === '') return null;
  if (NUMBER.test(text)) return positiveRounded(Number(text));
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const match = DURATION_PART.exec(text);
    if (!match) return null;
    if (!Object.hasOwn(SECONDS_PER_UNIT, match[2])) return null;
    total += Number(match[1]) * SECONDS_PER_UNIT[match[2]];
  }
  return positiveRounded(total);
}

function positiveRounded(seconds: number): number | null {
  const rounded = Math.round(seconds);
  return rounded >= 1 && Number.isSafeInteger(rounded) ? rounded : null;
}

// Binary multiples for every spelling: `10mb` means 10 MiB, as in the `bytes` package Fastify uses.
const BYTES_PER_UNIT: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/;

/** Parses a byte size (`1048576`, `512kb`, `10mb`, `1GiB`) into whole bytes; null if invalid or not positive. */
export function parseByteSize(input: string | number): number | null {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input > 0 ? input : null;
  }
  const match = BYTE_SIZE.exec(input.trim().toLowerCase());
  if (!match) return null;
  if (!Object.hasOwn(BYTES_PER_UNIT, match[2])) return null;
  const bytes = Math.floor(Number(match[1]) * BYTES_PER_UNIT[match[2]]);
  return bytes >= 1 && Number.isSafeInteger(bytes) ? bytes : null;
}
