import { client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterAll, describe, expect, it } from 'vitest'
import { cancelChannel, poolKeys } from '../../protocol/keys.js'
import { CancelSubscriber, parseCancel, WON_ELSEWHERE } from './cancel-subscriber.js'

const c = client()
const users: string[] = []
afterAll(async () => {
  for (const user of users) await c.acl('DELUSER', user)
  c.disconnect()
})

async function connectionNames(): Promise<string[]> {
  const list = (await c.client('LIST')) as string
  return list.split('\n').map((line) => line.match(/ name=(\S*) /)?.[1] ?? '')
}

describe('parseCancel', () => {
  it("reads a cancel's entry id and reason, and a winner's bare entry id", () => {
    expect(parseCancel('1700000000000-3 cancelled by the caller')).toEqual({
      entryId: '1700000000000-3',
      reason: 'cancelled by the caller',
    })
    expect(parseCancel('1700000000000-3')).toEqual({ entryId: '1700000000000-3', reason: WON_ELSEWHERE })
  })
})

describe('CancelSubscriber', () => {
  it("hands each message on a worker's channel to that worker, and leaves no connection after stop()", async () => {
    const keys = poolKeys('hy', uniquePool('cancels'))
    const name = `hy:cancels:${uniquePool('sub')}`
    const heard: [string, string, string][] = []
    const sub = new CancelSubscriber(redisUrl(), keys, name, (...args) => heard.push(args))
    await sub.start(['w-1', 'w:2'])
    expect(await connectionNames()).toContain(name)
    await c.publish(cancelChannel(keys, 'w:2'), '5-1 cancelled')
    await c.publish(cancelChannel(keys, 'w-1'), '6-1')
    await c.publish(cancelChannel(keys, 'w-3'), '7-1 not ours')
    await eventually(() => heard.length === 2)
    expect(heard).toEqual([
      ['w:2', '5-1', 'cancelled'],
      ['w-1', '6-1', WON_ELSEWHERE],
    ])
    sub.stop()
    await eventually(async () => !(await connectionNames()).includes(name))
  })

  it('fails to start when SUBSCRIBE is refused, and leaves no connection behind', async () => {
    const user = `no-channels-${process.pid}`
    users.push(user)
    await c.acl('SETUSER', user, 'on', '>pw', '~*', 'resetchannels', '+@all')
    const url = new URL(redisUrl())
    url.username = user
    url.password = 'pw'
    const name = `hy:cancels:${uniquePool('refused')}`
    const sub = new CancelSubscriber(url.toString(), poolKeys('hy', 'p'), name, () => {})
    await expect(sub.start(['w-1'])).rejects.toThrow(/NOPERM/)
    await eventually(async () => !(await connectionNames()).includes(name))
  })
})
