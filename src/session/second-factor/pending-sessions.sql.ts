/**
 * Ids of user `user`'s live pending sessions beyond the newest `keep` - 1 (`extra`: more
 * conditions), for the pending cap: the password alone cannot pile them up.
 */
export function pendingBeyond(user: string, keep: string, extra = ''): string {
  return `SELECT id FROM user_sessions
        WHERE user_id = ${user} AND second_factor_pending ${extra}
          AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
        ORDER BY created_at DESC, id DESC
        OFFSET greatest(${keep}::int - 1, 0)`;
}
