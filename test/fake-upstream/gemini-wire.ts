// Gemini's Generative Language API: POST /v1beta/models/{model}:generateContent (JSON) and
// :streamGenerateContent?alt=sse (SSE of the same GenerateContentResponse, piece by piece).
// Thoughts are parts with `thought: true`; the thought signature rides on the first function call
// (or the text) that follows them. Validation covers functionResponse parts answering the
// functionCall parts of the model turn right before them, and, for gemini-3 models, function
// calls replayed without their thought signature (which the real API rejects with a 400).

import { splitText } from './chat-wire.ts';
import { type Content, type Frame, signatureFor, sse, type Wire, type WireContext, type WireError } from './wire.ts';

const FINISH: Record<Content['finish'], string> = {
  stop: 'STOP',
  length: 'MAX_TOKENS',
  content_filter: 'SAFETY',
  tool_calls: 'STOP',
};

const STATUS: Record<number, [string, string]> = {
  400: ['INVALID_ARGUMENT', 'Request contains an invalid argument.'],
  401: ['UNAUTHENTICATED', 'API key not valid. Please pass a valid API key.'],
  403: ['PERMISSION_DENIED', 'The caller does not have permission'],
  404: ['NOT_FOUND', 'models/unknown is not found for API version v1beta.'],
  429: ['RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).'],
  500: ['INTERNAL', 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting'],
  503: ['UNAVAILABLE', 'The model is overloaded. Please try again later.'],
};

const SKIP_SIGNATURE = 'skip_thought_signature_validator';

// biome-ignore lint/suspicious/noExplicitAny: request JSON is arbitrary
type Json = any;

function errorBody(status: number, message?: string) {
  const [code, fallback] = STATUS[status] ?? [status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT', `Fake upstream error ${status}.`];
  return { error: { code: status, message: message ?? fallback, status: code } };
}

function invalid(message: string): WireError {
  return { status: 400, body: errorBody(400, message) };
}

function usageMetadata(content: Content) {
  const u = content.usage;
  const thoughts = u.reasoning_tokens ?? 0;
  return {
    promptTokenCount: u.prompt_tokens,
    candidatesTokenCount: u.completion_tokens - thoughts,
    totalTokenCount: u.prompt_tokens + u.completion_tokens,
    ...(u.cached_tokens ? { cachedContentTokenCount: u.cached_tokens } : {}),
    ...(thoughts ? { thoughtsTokenCount: thoughts } : {}),
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: u.prompt_tokens }],
  };
}

/** Model parts in order: thoughts, then text, then function calls; the signature on the first non-thought part. */
function modelParts(content: Content, textPieces: string[]): Json[] {
  const parts: Json[] = content.reasoning.map((text) => ({ text, thought: true }));
  const signature = content.reasoning.length > 0 ? (content.signature ?? signatureFor(content.reasoning.join(''))) : undefined;
  let signed = false;
  const sign = (part: Json) => {
    if (signature && !signed) {
      part.thoughtSignature = signature;
      signed = true;
    }
    return part;
  };
  for (const c of content.calls) parts.push(sign({ functionCall: { name: c.name, args: JSON.parse(c.arguments || '{}') } }));
  for (const piece of textPieces) parts.push(sign({ text: piece }));
  // Real Gemini sends calls after any text; keep that order.
  return [...parts.filter((p) => p.thought), ...parts.filter((p) => !p.thought && p.text !== undefined), ...parts.filter((p) => p.functionCall)];
}

function response(ctx: WireContext, parts: Json[], finish: string | null, content: Content | null) {
  const candidate: Json = { content: { parts, role: 'model' }, index: 0 };
  if (finish) candidate.finishReason = finish;
  const out: Json = { candidates: [candidate] };
  if (content) out.usageMetadata = usageMetadata(content);
  out.modelVersion = ctx.model;
  out.responseId = ctx.id;
  return out;
}

export const geminiWire: Wire = {
  name: 'gemini',
  contentType: 'text/event-stream',

  headers: () => ({ 'x-goog-request-id': `fake-${Date.now()}` }),

  validate(ctx) {
    const body = ctx.body;
    const contents = body?.contents;
    if (!Array.isArray(contents) || contents.length === 0) return invalid('* GenerateContentRequest.contents: contents is not specified');
    const gemini3 = ctx.model.startsWith('gemini-3');
    let pending: string[] = [];
    for (let i = 0; i < contents.length; i++) {
      const c = contents[i];
      if (c.role !== 'user' && c.role !== 'model') return invalid(`Please use a valid role: user, model.`);
      if (!Array.isArray(c.parts) || c.parts.length === 0) return invalid(`* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`);
      const responses = c.parts.filter((p: Json) => p.functionResponse).map((p: Json) => p.functionResponse.name);
      if (responses.length > 0 && responses.length !== pending.length) {
        return invalid(
          'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.',
        );
      }
      if (c.role === 'model') {
        const calls = c.parts.filter((p: Json) => p.functionCall);
        if (gemini3 && calls.length > 0 && !calls[0].thoughtSignature) {
          return invalid(`Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${calls[0].functionCall.name}\` , position ${i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`);
        }
        for (const p of c.parts) {
          if (p.thoughtSignature && p.thoughtSignature !== SKIP_SIGNATURE && !p.thoughtSignature.startsWith('sig_')) {
            return invalid('Corrupted thought signature.');
          }
        }
        pending = calls.map((p: Json) => p.functionCall.name);
      } else {
        pending = [];
      }
    }
    return undefined;
  },

  json(ctx, content) {
    const text = content.text !== undefined && content.text !== '' ? [content.text] : [];
    return response(ctx, modelParts(content, text), FINISH[content.finish], content);
  },

  frames(ctx, content, open = false) {
    const frames: Frame[] = [];
    const all = modelParts(content, content.text ? (content.chunks ?? splitText(content.text)) : []);
    const last = all.length - 1;
    all.forEach((part, i) => {
      const final = !open && i === last;
      frames.push({ data: sse(null, response(ctx, [part], final ? FINISH[content.finish] : null, final ? content : null)), delta: true });
    });
    if (all.length === 0 && !open) frames.push({ data: sse(null, response(ctx, [{ text: '' }], FINISH[content.finish], content)) });
    return frames;
  },

  errorBody: (status, _ctx, message) => errorBody(status, message),

  errorFrame: (_ctx, message) => ({ data: sse(null, errorBody(500, message)) }),
};
