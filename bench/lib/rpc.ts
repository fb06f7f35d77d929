// Request/response over a child process's IPC channel: the benchmark's processes (fake upstream,
// gateways) are driven by the orchestrator with small commands (stats, capture, gc).

import type { ChildProcess } from 'node:child_process';

interface Call {
  rpc: number;
  cmd: string;
  args: unknown;
}
interface Reply {
  rpc: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type Handlers = Record<string, (args: never) => unknown>;

/** In the child: answers the parent's calls with `handlers`. */
export function serveRpc(handlers: Handlers): void {
  process.on('message', async (message: Call) => {
    if (typeof message !== 'object' || message === null || typeof message.rpc !== 'number') return;
    const handler = handlers[message.cmd];
    let reply: Reply;
    try {
      if (!handler) throw new Error(`unknown command ${message.cmd}`);
      reply = { rpc: message.rpc, ok: true, result: await handler(message.args as never) };
    } catch (error) {
      reply = { rpc: message.rpc, ok: false, error: (error as Error).stack ?? String(error) };
    }
    process.send?.(reply);
  });
}

/** In the parent: calls a command in `child` and waits for its answer. */
export function createRpcClient(child: ChildProcess) {
  let next = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (message: Reply) => {
    const w = waiting.get(message.rpc);
    if (!w) return;
    waiting.delete(message.rpc);
    if (message.ok) w.resolve(message.result);
    else w.reject(new Error(message.error));
  });
  child.on('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`child exited (${code ?? signal})`));
    waiting.clear();
  });
  return function call<T = unknown>(cmd: string, args: unknown = null): Promise<T> {
    const rpc = next++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(rpc, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ rpc, cmd, args } satisfies Call);
    });
  };
}
