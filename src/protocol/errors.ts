// One error type for the whole gateway: every failure a client can see is an ApiError, so the
// HTTP layer renders exactly `{"error": {"message", "type", "param", "code"}}` with its status.

export type ErrorType = 'invalid_request_error' | 'not_found_error' | 'server_error' | 'rate_limit_error';

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Headers the client should see with this error (e.g. retry-after from an upstream 429). */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    type: ErrorType,
    message: string,
    opts: { param?: string | null; code?: string | null; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function invalidRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, 'invalid_request_error', message, { param, code });
}

export function notFound(message: string, param: string | null = null): ApiError {
  return new ApiError(404, 'invalid_request_error', message, { param, code: 'not_found' });
}

export function storeUnavailable(cause: unknown): ApiError {
  return new ApiError(
    503,
    'server_error',
    'The state storage is unavailable, so the conversation history cannot be loaded or saved. Retry shortly.',
    { code: 'state_storage_unavailable', cause },
  );
}

/**
 * A client-sent value as it may appear in an error message: never throws (an object whose
 * `toString` is not a function makes String() throw), never longer than `max` characters.
 */
export function shown(value: unknown, max = 200): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else {
    try {
      text = JSON.stringify(value) ?? typeof value;
    } catch {
      text = typeof value;
    }
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
