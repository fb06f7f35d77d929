// /v1/conversations: the Conversations API as the official SDK's `client.conversations` calls
// it, plus Parley extensions: GET /v1/conversations to find a user's conversations, PATCH to merge
// metadata, GET …/details for running totals, POST …/fork.

import type { FastifyInstance } from 'fastify';
import type { Conversations } from '../../engine/conversations.ts';
import {
  parseAddItems,
  parseCreateConversation,
  parseIncludeQuery,
  parseForkConversation,
  parseListConversations,
  parseMergeMetadata,
  parsePaging,
  parseUpdateConversation,
} from '../../protocol/conversations.ts';

interface ConversationParams {
  id: string;
}
interface ItemParams {
  id: string;
  itemId: string;
}
type Query = Record<string, unknown>;

/** `conversationsFor(tenant)`: the Conversations API as that tenant sees it. */
export function conversationsRoutes(conversationsFor: (tenant: string) => Conversations) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.post('/v1/conversations', async (request) =>
      conversationsFor(request.tenant).create(parseCreateConversation(request.body)),
    );

    app.get<{ Querystring: Query }>('/v1/conversations', async (request) =>
      conversationsFor(request.tenant).list(parseListConversations(request.query)),
    );

    app.get<{ Params: ConversationParams }>('/v1/conversations/:id', async (request) =>
      conversationsFor(request.tenant).retrieve(request.params.id),
    );

    app.post<{ Params: ConversationParams }>('/v1/conversations/:id', async (request) =>
      conversationsFor(request.tenant).update(request.params.id, parseUpdateConversation(request.body).metadata),
    );

    app.delete<{ Params: ConversationParams }>('/v1/conversations/:id', async (request) =>
      conversationsFor(request.tenant).delete(request.params.id),
    );

    // Parley extensions: merge metadata, running totals, fork at an item.
    app.patch<{ Params: ConversationParams }>('/v1/conversations/:id', async (request) =>
      conversationsFor(request.tenant).mergeMetadata(request.params.id, parseMergeMetadata(request.body)),
    );

    app.get<{ Params: ConversationParams }>('/v1/conversations/:id/details', async (request) =>
      conversationsFor(request.tenant).details(request.params.id),
    );

    app.post<{ Params: ConversationParams }>('/v1/conversations/:id/fork', async (request) =>
      conversationsFor(request.tenant).fork(request.params.id, parseForkConversation(request.body)),
    );

    app.post<{ Params: ConversationParams; Querystring: Query }>(
      '/v1/conversations/:id/items',
      async (request) => {
        parseIncludeQuery(request.query);
        return conversationsFor(request.tenant).addItems(request.params.id, parseAddItems(request.body));
      },
    );

    app.get<{ Params: ConversationParams; Querystring: Query }>(
      '/v1/conversations/:id/items',
      async (request) => {
        parseIncludeQuery(request.query);
        return conversationsFor(request.tenant).listItems(request.params.id, parsePaging(request.query));
      },
    );

    app.get<{ Params: ItemParams; Querystring: Query }>(
      '/v1/conversations/:id/items/:itemId',
      async (request) => {
        parseIncludeQuery(request.query);
        return conversationsFor(request.tenant).retrieveItem(request.params.id, request.params.itemId);
      },
    );

    app.delete<{ Params: ItemParams }>('/v1/conversations/:id/items/:itemId', async (request) =>
      conversationsFor(request.tenant).deleteItem(request.params.id, request.params.itemId),
    );
  };
}
