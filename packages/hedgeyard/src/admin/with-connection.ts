import {
  type Connection,
  connectReady,
  createConnection,
  type RedisInput,
  redisFailure,
} from '../redis/connection.js'

/** Runs `fn` on a short-lived command connection; Redis failures become HedgeyardErrors. */
export async function withConnection<T>(
  redis: RedisInput,
  what: string,
  fn: (conn: Connection) => Promise<T>,
): Promise<T> {
  const conn = createConnection(redis, 'command', `hy:admin:${what}`)
  try {
    await connectReady(conn, 5_000)
    return await fn(conn)
  } catch (err) {
    throw redisFailure(err, what)
  } finally {
    conn.disconnect()
  }
}
