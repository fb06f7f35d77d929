// DELETE /v1/users/{user} (Parley extension): deletes every response and conversation whose `user`
// is this one, with their items, in one call (a data-protection request).

import type { FastifyInstance } from 'fastify';
import type { UserDataDeleted } from '../../engine/bookkeeping.ts';
import type { Engine } from '../../engine/engine.ts';
import { invalidRequest } from '../../protocol/errors.ts';

export function usersRoutes(engine: Engine) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.delete<{ Params: { user: string } }>('/v1/users/:user', async (request): Promise<UserDataDeleted> => {
      const user = request.params.user;
      if (user.length === 0) throw invalidRequest('The user must not be empty.', 'user', 'invalid_value');
      const deleted = await engine.forTenant(request.tenant).deleteUserData(user);
      return { object: 'user.data.deleted', user, deleted: true, ...deleted };
    });
  };
}
