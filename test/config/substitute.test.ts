// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are config text whose ${VAR} references are under test
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { substituteVariables } from '../../src/config/substitute.ts';

const env = { A: 'alpha', B: 'beta', EMPTY: '' };

describe('substituteVariables', () => {
  it('replaces $VAR, ${VAR} and leaves plain text alone', () => {
    assert.equal(substituteVariables('x-$A-${B}-y', env).value, 'x-alpha-beta-y');
    const plain = substituteVariables('no references here', env);
    assert.equal(plain.value, 'no references here');
    assert.equal(plain.changed, false);
  });

  it('ends a bare name at the first character that cannot be part of it', () => {
    assert.equal(substituteVariables('$A.$B/$A_', env).problems[0].variable, 'A_');
    assert.equal(substituteVariables('$A.$B/', env).value, 'alpha.beta/');
  });

  it('uses ${VAR:-default} when the variable is unset or empty', () => {
    assert.equal(substituteVariables('${A:-x}', env).value, 'alpha');
    assert.equal(substituteVariables('${MISSING:-fallback value}', env).value, 'fallback value');
    assert.equal(substituteVariables('${EMPTY:-fallback}', env).value, 'fallback');
    assert.equal(substituteVariables('${MISSING:-}', env).value, '');
    assert.deepEqual(substituteVariables('${MISSING:-}', env).problems, []);
  });

  it('uses ${VAR-default} only when the variable is unset', () => {
    assert.equal(substituteVariables('${EMPTY-fallback}', env).value, '');
    assert.equal(substituteVariables('${MISSING-fallback}', env).value, 'fallback');
  });

  it('substitutes references inside a default', () => {
    assert.equal(substituteVariables('${MISSING:-$A}', env).value, 'alpha');
    assert.equal(substituteVariables('${MISSING:-${B}/x}', env).value, 'beta/x');
    const nested = substituteVariables('ab${MISSING:-$NOPE}', env);
    assert.equal(nested.problems.length, 1);
    assert.equal(nested.problems[0].variable, 'NOPE');
    assert.equal(nested.problems[0].index, 'ab${MISSING:-'.length);
  });

  it('treats $$ as a literal dollar and a lone $ as text', () => {
    assert.equal(substituteVariables('price: $$5', env).value, 'price: $5');
    assert.equal(substituteVariables('$${A}', env).value, '${A}');
    assert.equal(substituteVariables('$$$A', env).value, '$alpha');
    assert.equal(substituteVariables('costs 5$', env).value, 'costs 5$');
    assert.equal(substituteVariables('$1 and $ sign', env).value, '$1 and $ sign');
  });

  it('reports every unset variable, with its offset', () => {
    const result = substituteVariables('$NOPE and ${ALSO_NOPE} and $A', env);
    assert.deepEqual(
      result.problems.map((p) => [p.variable, p.index, p.length]),
      [
        ['NOPE', 0, 5],
        ['ALSO_NOPE', 10, 12],
      ],
    );
    assert.match(result.problems[0].message, /^environment variable NOPE is not set/);
    assert.equal(result.value, ' and  and alpha');
  });

  it('reports malformed references', () => {
    const unterminated = substituteVariables('x ${A', env);
    assert.equal(unterminated.problems.length, 1);
    assert.match(unterminated.problems[0].message, /unterminated/);
    const invalid = substituteVariables('${1A} ${} ${A B}', env);
    assert.equal(invalid.problems.length, 3);
    for (const p of invalid.problems) assert.match(p.message, /invalid variable reference/);
  });

  it('treats a set-but-empty variable as set', () => {
    const result = substituteVariables('[$EMPTY]', env);
    assert.equal(result.value, '[]');
    assert.deepEqual(result.problems, []);
  });
});
