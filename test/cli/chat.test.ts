// `parley chat` in a real terminal: tmux runs the CLI in a pane, the test types with send-keys and
// reads the screen with capture-pane. Against a gateway on a loopback port (--url) and in-process
// (--config). tmux must be installed (.ci/run installs it): without it this test fails, it does
// not skip.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startFakeUpstream } from '../fake-upstream/server.ts';
import { type Harness, provider, startHarness } from '../helpers/harness.ts';

const run = promisify(execFile);
const PARLEY = new URL('../../bin/parley.js', import.meta.url).pathname;
// A server of our own: the test never touches the user's tmux sessions.
const SOCKET = `parley-chat-test-${process.pid}`;

function tmuxVersion(): string {
  try {
    return execFileSync('tmux', ['-V'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('tmux is not installed: the `parley chat` test drives a real terminal through tmux (apt-get install tmux).');
  }
}

const tmux = (...args: string[]) => run('tmux', ['-L', SOCKET, ...args]);

/** Runs `parley chat …` in a new tmux session; the pane stays open after it exits, showing its exit code. */
async function startChat(session: string, args: string[]): Promise<void> {
  const command = [process.execPath, PARLEY, 'chat', ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  await tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '60', `${command}; echo "EXIT:$?"; sleep 600`);
}

async function screen(session: string): Promise<string> {
  const { stdout } = await tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-500');
  return stdout;
}

async function waitForScreen(session: string, check: (text: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await screen(session);
    if (check(text)) return text;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; the screen shows:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function type(session: string, line: string): Promise<void> {
  await tmux('send-keys', '-t', session, '-l', line);
  await tmux('send-keys', '-t', session, 'Enter');
}

const count = (text: string, part: string) => text.split(part).length - 1;

let h: Harness;
before(async () => {
  tmuxVersion();
  h = await startHarness({
    store: 'memory',
    providers: (url) => [
      provider('openai/gpt-4o-mini', { base_url: url, default: true, pricing: { input_per_million: 1, output_per_million: 2, cached_input_per_million: null } }),
    ],
  });
});
after(async () => {
  await tmux('kill-server').catch(() => {});
  await h?.close();
});

describe('parley chat', () => {
  it('against a gateway: streams, shows usage, and /history, /fork, /new, /quit work', async () => {
    const s = 'gateway';
    h.upstream.enqueue(
      { kind: 'text', text: 'Hello Ada!', usage: { prompt_tokens: 12, completion_tokens: 4 } },
      { kind: 'slow', text: 'Spring is best.', chunks: ['Spring ', 'is ', 'best.'], chunkDelayMs: 400 },
    );
    await startChat(s, ['--url', h.url, '--model', 'gpt-4o-mini']);
    const banner = await waitForScreen(s, (t) => t.includes('you> '), 'the prompt');
    assert.match(banner, /parley chat: gpt-4o-mini via http:\/\/127\.0\.0\.1:\d+/);
    const conversation = /conversation (conv_[0-9a-f]+) \(new\)/.exec(banner)?.[1];
    assert.ok(conversation, banner);

    await type(s, 'My name is Ada');
    let text = await waitForScreen(s, (t) => t.includes('conversation: 1 turn'), 'the first turn');
    assert.match(text, /assistant> Hello Ada!\n\[turn: 12 in, 4 out \| conversation: 1 turn, 16 tokens, \$0\.000020\]/);

    // Streaming: the first words are on screen before the answer is complete.
    await type(s, 'When should I visit Japan?');
    text = await waitForScreen(s, (t) => t.includes('assistant> Spring'), 'the first streamed words');
    assert.ok(!text.includes('Spring is best.'), 'the answer is still streaming');
    text = await waitForScreen(s, (t) => t.includes('conversation: 2 turns'), 'the second turn');
    assert.match(text, /assistant> Spring is best\.\n\[turn: \d+ in, \d+ out \| conversation: 2 turns, \d+ tokens, \$0\.\d{6}\]/);
    assert.deepEqual(
      h.upstream.lastRequest()?.body.messages.map((m: { content: string }) => m.content),
      ['My name is Ada', 'Hello Ada!', 'When should I visit Japan?'],
    );

    await type(s, '/history');
    text = await waitForScreen(s, (t) => t.includes('assistant: Spring is best.'), 'the history');
    const history = text.slice(text.lastIndexOf('you> /history'));
    assert.deepEqual(
      [...history.matchAll(/^(msg_[0-9a-f]+) {2}(\w+): (.*)$/gm)].map((m) => `${m[2]}: ${m[3]}`),
      ['user: My name is Ada', 'assistant: Hello Ada!', 'user: When should I visit Japan?', 'assistant: Spring is best.'],
    );
    const secondItem = /^(msg_[0-9a-f]+) {2}assistant: Hello Ada!$/m.exec(history)?.[1];
    assert.ok(secondItem);

    // Fork after the first answer: the fork knows the name, not the question about Japan.
    await type(s, `/fork ${secondItem}`);
    text = await waitForScreen(s, (t) => t.includes('(now on the fork)'), 'the fork');
    const fork = new RegExp(`forked ${conversation} at ${secondItem} -> (conv_[0-9a-f]+)`).exec(text)?.[1];
    assert.ok(fork, text);
    h.upstream.enqueue({ kind: 'text', text: 'You are Ada.' });
    await type(s, 'Who am I?');
    await waitForScreen(s, (t) => t.includes('assistant> You are Ada.'), 'the answer on the fork');
    assert.deepEqual(
      h.upstream.lastRequest()?.body.messages.map((m: { content: string }) => m.content),
      ['My name is Ada', 'Hello Ada!', 'Who am I?'],
    );

    await type(s, '/new');
    text = await waitForScreen(s, (t) => t.includes('new conversation conv_'), 'a new conversation');
    h.upstream.enqueue({ kind: 'text', text: 'I do not know yet.' });
    await type(s, 'Who am I now?');
    await waitForScreen(s, (t) => t.includes('assistant> I do not know yet.'), 'the answer on the new conversation');
    assert.deepEqual(
      h.upstream.lastRequest()?.body.messages.map((m: { content: string }) => m.content),
      ['Who am I now?'],
    );

    await type(s, '/nonsense');
    await waitForScreen(s, (t) => t.includes('unknown command /nonsense'), 'the unknown-command hint');
    await type(s, '/quit');
    text = await waitForScreen(s, (t) => t.includes('EXIT:'), 'the exit');
    assert.match(text, /bye\nEXIT:0/);
    assert.equal(count(text, 'error:'), 0, text);
  });

  it('in-process from a config file, continuing a conversation by id', async () => {
    const upstream = await startFakeUpstream();
    const dir = await mkdtemp(join(tmpdir(), 'parley-chat-'));
    try {
      const config = join(dir, 'parley.yaml');
      await writeFile(
        config,
        [
          'state_storage: { type: sqlite, path: ' + JSON.stringify(join(dir, 'parley.db')) + ' }',
          'model_providers:',
          '  - model: openai/gpt-4o-mini',
          `    base_url: ${upstream.url}`,
          '    access_key: test-key',
        ].join('\n'),
      );
      upstream.enqueue({ kind: 'text', text: 'Noted: tea.' }, { kind: 'text', text: 'You like tea.' });
      const s = 'inprocess';
      await startChat(s, ['--config', config]);
      let text = await waitForScreen(s, (t) => t.includes('you> '), 'the prompt');
      assert.match(text, /parley chat: openai\/gpt-4o-mini via in-process/);
      const conversation = /conversation (conv_[0-9a-f]+) \(new\)/.exec(text)?.[1];
      await type(s, 'I like tea.');
      await waitForScreen(s, (t) => t.includes('conversation: 1 turn'), 'the turn');
      await type(s, '/quit');
      await waitForScreen(s, (t) => t.includes('EXIT:0'), 'the exit');

      // A second session continues the same conversation from the SQLite file.
      await startChat('again', ['--config', config, '--conversation', String(conversation)]);
      await waitForScreen('again', (t) => t.includes('you> '), 'the prompt');
      await type('again', 'What do I like?');
      text = await waitForScreen('again', (t) => t.includes('conversation: 2 turns'), 'the turn');
      assert.match(text, /assistant> You like tea\./);
      assert.deepEqual(
        upstream.lastRequest()?.body.messages.map((m: { content: string }) => m.content),
        ['I like tea.', 'Noted: tea.', 'What do I like?'],
      );
      await type('again', '/quit');
      await waitForScreen('again', (t) => t.includes('EXIT:0'), 'the exit');
    } finally {
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('explains a bad invocation', async () => {
    const both = await run(process.execPath, [PARLEY, 'chat', '--url', 'http://x', '--config', 'y']).catch((e: { code: number; stderr: string }) => e);
    assert.equal((both as { code: number }).code, 2);
    assert.match((both as { stderr: string }).stderr, /--url and --config cannot be used together/);
  });
});
