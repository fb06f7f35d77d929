// Fastify's default error and not-found bodies are not OpenAI-shaped; these handlers make every
// error a client sees `{"error": {"message", "type", "param", "code"}}` with a fitting status.

import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SecretScrubber } from '../ops/redact.ts';
import { ApiError } from '../protocol/errors.ts';

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as FastifyError & { statusCode?: number };
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'invalid_request_error',
        `We could not parse the JSON body of your request: ${e.message}. Send a valid JSON object with content-type application/json.`,
        { code: 'invalid_json' });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'invalid_request_error', 'The request body is larger than this gateway accepts (limits.max_body_bytes).', { code: 'request_too_large' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'invalid_request_error', 'Unsupported content-type: send the body as application/json.', { code: 'unsupported_media_type' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'invalid_request_error', 'The request body length does not match its content-length header.', { code: 'invalid_body' });
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, 'invalid_request_error', e.message, { code: e.code ?? null });
  }
  return new ApiError(500, 'server_error', 'The gateway had an internal error while processing your request.', { code: 'internal_error', cause: error });
}

/** `scrubber` masks any secret that made it into an error message (an upstream echoing a key). */
export function registerErrorHandlers(app: FastifyInstance, scrubber?: SecretScrubber): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
    const body = apiError.toBody();
    if (scrubber) body.error.message = scrubber.scrub(body.error.message);
    reply.status(apiError.status).headers(apiError.headers).send(body);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    reply.status(404).send(
      new ApiError(404, 'invalid_request_error', `Invalid URL (${request.method} ${request.url.split('?')[0]}).`, {
        code: 'unknown_url',
      }).toBody(),
    );
  });
}

/**
 * Fastify's own answers for URLs its router cannot take (bad percent-encoding, a path parameter
 * longer than routerOptions.maxParamLength), OpenAI-shaped. The path is never echoed whole.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const apiError =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new ApiError(414, 'invalid_request_error', 'A path parameter (an id) is longer than this gateway accepts.', { code: 'uri_too_long' })
      : new ApiError(400, 'invalid_request_error', 'The URL is not valid (check its percent-encoding).', { code: 'invalid_url' });
  reply.status(apiError.status).send(apiError.toBody());
}

/**
 * Requests Node's HTTP parser rejects before Fastify sees them (headers too large, malformed
 * request lines, timeouts), answered OpenAI-shaped on the raw socket, which is then closed.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request_header_fields_too_large', 'The request line and headers are larger than this gateway accepts.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request_timeout', 'The request was not received in time.']
        : [400, 'invalid_request', 'The HTTP request could not be parsed.'];
  const body = JSON.stringify(new ApiError(status, 'invalid_request_error', message, { code }).toBody());
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}
