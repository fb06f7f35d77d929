// `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR-default}` substitution in one string. `$$` is a
// literal dollar; a `$` not followed by a name or `{` is kept as is. The loader applies this to
// parsed YAML string values (never to keys or comments), so a substituted value can hold any
// character without breaking the YAML around it.

export type Env = Record<string, string | undefined>;

export interface SubstitutionProblem {
  /** The variable concerned, when the reference was well formed. */
  variable: string | null;
  /** Offset of the offending reference in the input string, and its length. */
  index: number;
  length: number;
  /** Says what is wrong without repeating any value. */
  message: string;
}

export interface SubstitutionResult {
  value: string;
  problems: SubstitutionProblem[];
  /** True when at least one `$` reference (or `$$`) was rewritten. */
  changed: boolean;
}

const FORMS = `expected $NAME, \${NAME}, \${NAME:-default}, or $$ for a literal dollar`;
const NAME_START = /[A-Za-z_]/;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const BRACED = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([\s\S]*))?$/;

export function substituteVariables(input: string, env: Env): SubstitutionResult {
  const problems: SubstitutionProblem[] = [];
  let changed = false;
  let out = '';
  let i = 0;
  while (i < input.length) {
    const dollar = input.indexOf('$', i);
    if (dollar === -1) {
      out += input.slice(i);
      break;
    }
    out += input.slice(i, dollar);
    const next = input[dollar + 1];

    if (next === '$') {
      out += '$';
      changed = true;
      i = dollar + 2;
      continue;
    }

    if (next !== undefined && NAME_START.test(next)) {
      NAME.lastIndex = dollar + 1;
      const name = (NAME.exec(input) as RegExpExecArray)[0];
      const length = name.length + 1;
      const value = env[name];
      if (value === undefined) {
        problems.push({ variable: name, index: dollar, length, message: notSetMessage(name) });
      } else {
        out += value;
      }
      changed = true;
      i = dollar + length;
      continue;
    }

    if (next === '{') {
      const close = findClosingBrace(input, dollar + 2);
      if (close === -1) {
        problems.push({
          variable: null,
          index: dollar,
          length: input.length - dollar,
          message: `unterminated "\${": ${FORMS}`,
        });
        changed = true;
        out += input.slice(dollar);
        break;
      }
      const inner = input.slice(dollar + 2, close);
      const length = close + 1 - dollar;
      const match = BRACED.exec(inner);
      changed = true;
      i = close + 1;
      if (!match) {
        problems.push({
          variable: null,
          index: dollar,
          length,
          message: `invalid variable reference: ${FORMS}`,
        });
        continue;
      }
      const [, name, operator, fallback] = match;
      const value = env[name];
      const useDefault = operator === ':-' ? value === undefined || value === '' : value === undefined;
      if (operator !== undefined && useDefault) {
        // The default may itself reference variables (`${A:-$B}`); report those at their own offset.
        const nested = substituteVariables(fallback, env);
        const offset = dollar + 2 + name.length + operator.length;
        for (const p of nested.problems) problems.push({ ...p, index: p.index + offset });
        out += nested.value;
      } else if (value === undefined) {
        problems.push({ variable: name, index: dollar, length, message: notSetMessage(name) });
      } else {
        out += value;
      }
      continue;
    }

    // A lone `$` (end of string, or followed by a digit, space, ...) is literal text.
    out += '$';
    i = dollar + 1;
  }
  return { value: out, problems, changed };
}

function notSetMessage(name: string): string {
  return `environment variable ${name} is not set (set it, or give a default: \${${name}:-value})`;
}

/** Index of the `}` closing a `${` whose body starts at `from`, honouring nested `${...}`; -1 if none. */
function findClosingBrace(input: string, from: number): number {
  let depth = 0;
  for (let j = from; j < input.length; j++) {
    const c = input[j];
    if (c === '$' && input[j + 1] === '$') {
      j++;
    } else if (c === '$' && input[j + 1] === '{') {
      depth++;
      j++;
    } else if (c === '}') {
      if (depth === 0) return j;
      depth--;
    }
  }
  return -1;
}
